package dockerv1

import (
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pyInput = `{"id":"ab","b":[1,true,null,{"z":"é/\"<>&\u0001\t","a":"😀"}],"Size":1024,"a":{}}`

func TestPyDumpsSorted(t *testing.T) {
	got, err := pyDumpsSorted([]byte(pyInput))
	require.NoError(t, err)
	const want = `{"Size": 1024, "a": {}, "b": [1, true, null, {"a": "\ud83d\ude00", "z": "\u00e9/\"<>&\u0001\t"}], "id": "ab"}`
	assert.Equal(t, want, string(got))

	// The same as Python's own, when there is one.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	cmd := exec.Command(py, "-c", "import json,sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read()), sort_keys=True))")
	cmd.Stdin = strings.NewReader(pyInput)
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, string(out), string(got))
}

func TestChecksumForms(t *testing.T) {
	js := []byte(`{"id":"0123456789abcdef","created":"2013-04-01T00:00:00Z"}`)
	layer := []byte("layer bytes")
	sorted, err := pyDumpsSorted(js)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		img  Image
		ok   bool
	}{
		{"list, payload", Image{JSON: js, Checksums: []string{sum(js, "\n", layer)}}, true},
		{"list, payload among tarsum", Image{JSON: js, Checksums: []string{"tarsum+sha256:00", sum(js, "\n", layer)}}, true},
		{"list, layer alone is not accepted", Image{JSON: js, Checksums: []string{sum(layer)}}, false},
		{"bare, payload", Image{JSON: js, Checksums: []string{sum(js, "\n", layer)}, bareChecksum: true}, true},
		{"bare, python-sorted json", Image{JSON: js, Checksums: []string{sum(sorted, "\n", layer)}, bareChecksum: true}, true},
		{"bare, layer alone", Image{JSON: js, Checksums: []string{sum(layer)}, bareChecksum: true}, true},
		{"bare, wrong", Image{JSON: js, Checksums: []string{sum(layer, "x")}, bareChecksum: true}, false},
		{"tarsum only: not verified", Image{JSON: js, Checksums: []string{"tarsum+sha256:00"}}, true},
	} {
		c := newChecksummer(&tc.img)
		_, _ = c.Write(layer)
		err := c.check()
		if tc.ok {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, ErrChecksumMismatch, tc.name)
		}
	}
}

func sum(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			h.Write([]byte(p))
		case []byte:
			h.Write(p)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

package regstoretest_test

import (
	"archive/tar"
	"bytes"
	"os/exec"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteV1Tree(t *testing.T) {
	m := regstore.NewMemFS()
	tree, err := regstoretest.WriteV1Tree(m, "v1")
	require.NoError(t, err)

	b, err := m.ReadFile("v1/images/" + regstoretest.V1XZID + "/ancestry")
	require.NoError(t, err)
	assert.Equal(t, `["`+regstoretest.V1XZID+`", "`+regstoretest.V1AppID+`", "`+regstoretest.V1EnvID+`", "`+regstoretest.V1BaseID+`"]`, string(b))
	b, err = m.ReadFile("v1/repositories/library/ubuntu/tag_latest")
	require.NoError(t, err)
	assert.Equal(t, regstoretest.V1AppID, string(b))
	b, err = m.ReadFile("v1/repositories/library/ubuntu/taglatest_json")
	require.NoError(t, err)
	assert.Contains(t, string(b), `"last_update": 1412180000`)
	b, err = m.ReadFile("v1/images/" + regstoretest.V1BaseID + "/_checksum")
	require.NoError(t, err)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, string(b), "the bare-string form")
	b, err = m.ReadFile("v1/images/" + regstoretest.V1AppID + "/_checksum")
	require.NoError(t, err)
	assert.Regexp(t, `^\["sha256:[0-9a-f]{64}"\]$`, string(b))
	_, err = m.Stat("v1/images/" + regstoretest.V1UnfinishedID + "/_inprogress")
	assert.NoError(t, err)
	assert.Len(t, regstoretest.V1XZID, 16)

	assert.True(t, tree.Images[regstoretest.V1EnvID].Empty)
	assert.Len(t, tree.Images[regstoretest.V1EnvID].Tar, 1024, "only the end-of-archive marker")
	assert.True(t, tree.Convertible(tree.Tags[2]))
	assert.False(t, tree.Convertible(regstoretest.V1Tag{ImageID: regstoretest.V1MissingID}))

	var tars [][]byte
	for _, img := range tree.Chain(regstoretest.V1XZID) {
		tars = append(tars, img.Tar)
	}
	fsTree, err := regstoretest.ApplyLayers(tars...)
	require.NoError(t, err)
	var names []string
	for n := range fsTree {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"bin", "bin/tool", "bin/alias", "etc", "etc/hostname", "etc/app.conf", "var",
		"usr", "usr/share", "usr/share/doc", "usr/share/doc/c.txt", "opt", "opt/x", "opt/x/data.txt"}, names)
	assert.EqualValues(t, 0o750, fsTree["usr/share/doc"].Mode)
	assert.Equal(t, "#!/bin/sh\necho tool v2\n", fsTree["bin/tool"].Body)
	assert.EqualValues(t, 0o750, fsTree["bin/tool"].Mode)
	assert.Equal(t, byte(tar.TypeSymlink), fsTree["bin/alias"].Type)
}

func TestV1XZLayer(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
	cmd := exec.Command("xz", "-dc")
	cmd.Stdin = bytes.NewReader(regstoretest.V1XZLayer)
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, regstoretest.V1XZTar, got)
}

func TestApplyLayersOpaque(t *testing.T) {
	lower := tarOf(t, "d/", "d/a", "d/b", "e")
	upper := tarOf(t, "d/c", "d/.wh..wh..opq", "./e")
	fsTree, err := regstoretest.ApplyLayers(lower, upper)
	require.NoError(t, err)
	var names []string
	for n := range fsTree {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"d", "d/c", "e"}, names)
}

func tarOf(t *testing.T, names ...string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg}
		if n[len(n)-1] == '/' {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		require.NoError(t, tw.WriteHeader(h))
	}
	require.NoError(t, tw.Close())
	return b.Bytes()
}

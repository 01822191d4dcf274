package regstore_test

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"unicode"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseLink feeds link-file contents as the registry reads them (the
// whole file, byte for byte) to ParseLink. Only the exact digest string of
// an available algorithm is a link; everything else is corrupt, never
// "missing".
func TestParseLink(t *testing.T) {
	junk := strings.Repeat("\x00\xffjunk ", 50)[:300]
	for _, c := range []struct {
		name    string
		content string
		want    digest.Digest // empty: corrupt
	}{
		{"sha256", "sha256:" + goldenHex256, golden256},
		{"sha384", "sha384:" + goldenHex384, golden384},
		{"sha512", "sha512:" + goldenHex512, golden512},

		{"trailing newline", "sha256:" + goldenHex256 + "\n", ""},
		{"trailing CRLF", "sha256:" + goldenHex256 + "\r\n", ""},
		{"trailing space", "sha256:" + goldenHex256 + " ", ""},
		{"trailing NUL", "sha256:" + goldenHex256 + "\x00", ""},
		{"leading space", " sha256:" + goldenHex256, ""},
		{"leading newline", "\nsha256:" + goldenHex256, ""},
		{"leading BOM", "\ufeffsha256:" + goldenHex256, ""},
		{"uppercase hex", "sha256:" + strings.ToUpper(goldenHex256), ""},
		{"one uppercase hex digit", "sha256:" + goldenHex256[:1] + "C" + goldenHex256[2:], ""},
		{"uppercase algorithm", "SHA256:" + goldenHex256, ""},
		{"63 hex", "sha256:" + goldenHex256[:63], ""},
		{"65 hex", "sha256:" + goldenHex256 + "0", ""},
		{"sha512 algorithm with sha256 hex", "sha512:" + goldenHex256, ""},
		{"non-hex", "sha256:" + strings.Repeat("z", 64), ""},
		{"unknown algorithm", "md5:5d41402abc4b2a76b9719d911017c592", ""},
		{"tarsum", "tarsum.v1+sha256:" + goldenHex256, ""},
		{"algorithm only", "sha256:", ""},
		{"hex only", goldenHex256, ""},
		{"no algorithm", ":" + goldenHex256, ""},
		{"two digests", "sha256:" + goldenHex256 + "sha256:" + goldenHex256, ""},
		{"two lines", "sha256:" + goldenHex256 + "\nsha256:" + goldenHex256, ""},
		{"path", "sha256:../../" + goldenHex256[6:], ""},
		{"empty", "", ""},
		{"300 bytes of junk", junk, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := regstore.ParseLink([]byte(c.content))
			if c.want != "" {
				require.Len(t, c.content, len(c.want), "test case")
				assert.NoError(t, err, "ParseLink(%q)", c.content)
				assert.Equal(t, c.want, got, "ParseLink(%q)", c.content)
				return
			}
			assert.ErrorIs(t, err, regstore.ErrCorruptLink, "ParseLink(%q)", c.content)
			assert.NotErrorIs(t, err, fs.ErrNotExist, "ParseLink(%q)", c.content)
			assert.Empty(t, got, "ParseLink(%q)", c.content)
			if len(c.content) > 100 {
				assert.NotContains(t, err.Error(), c.content, "ParseLink(%q) error quotes the whole content", c.content)
			}
		})
	}
	t.Run("sha256 link is 71 bytes", func(t *testing.T) {
		assert.Len(t, "sha256:"+goldenHex256, 71)
	})
}

// FuzzParseLink: ParseLink never panics (go-digest's Encoded and Algorithm
// do on malformed input), and what it accepts is exactly a lowercase digest
// string of an available algorithm that re-serialises to the same bytes.
func FuzzParseLink(f *testing.F) {
	f.Add([]byte("sha256:" + goldenHex256))
	f.Add([]byte("sha384:" + goldenHex384))
	f.Add([]byte("sha512:" + goldenHex512))
	f.Add([]byte("sha256:" + goldenHex256 + "\n"))
	f.Add([]byte("SHA256:" + strings.ToUpper(goldenHex256)))
	f.Add([]byte("md5:5d41402abc4b2a76b9719d911017c592"))
	f.Add([]byte(""))
	f.Add([]byte(":"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := regstore.ParseLink(b)
		if err != nil {
			assert.ErrorIs(t, err, regstore.ErrCorruptLink, "ParseLink(%q)", b)
			assert.Empty(t, d, "ParseLink(%q)", b)
			return
		}
		assert.Equal(t, string(b), d.String(), "ParseLink(%q) does not re-serialise to its input", b)
		assert.NoError(t, regstore.ValidateDigest(d), "ParseLink(%q) = %q", b, d)
		assert.False(t, bytes.ContainsFunc(b, unicode.IsSpace), "ParseLink(%q) accepted whitespace", b)
		assert.False(t, bytes.ContainsFunc(b, unicode.IsUpper), "ParseLink(%q) accepted upper case", b)
		assert.Contains(t, []int{71, 103, 135}, len(b), "ParseLink(%q) accepted a length no digest has", b)
		// Encoded and Algorithm must not panic on what ParseLink accepts.
		assert.Len(t, d.Encoded(), d.Algorithm().Size()*2, "ParseLink(%q).Encoded()", b)
	})
}

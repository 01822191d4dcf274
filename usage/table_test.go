package usage

import (
	"bytes"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
)

func TestSHA256Key(t *testing.T) {
	d := digest.FromString("x")
	k, ok := sha256Key(d)
	assert.True(t, ok)
	assert.Equal(t, d.Encoded(), digest.NewDigestFromBytes(digest.SHA256, k[:]).Encoded())
	for _, bad := range []digest.Digest{
		"", "sha256:", "sha512:" + digest.Digest(d.Encoded()), // wrong algorithm
		"sha256:" + digest.Digest(d.Encoded()[:63]),     // short
		"sha256:" + digest.Digest(d.Encoded()[:63]+"G"), // not hex
		"sha256:" + digest.Digest(d.Encoded()[:63]+"A"), // uppercase: names no blob
	} {
		_, ok := sha256Key(bad)
		assert.False(t, ok, "%q", bad)
	}
}

func TestBlobTableIndex(t *testing.T) {
	var tb blobTable
	names := []string{"a", "b", "c", "d"}
	for _, s := range names {
		k, _ := sha256Key(digest.FromString(s))
		tb.keys = append(tb.keys, k)
	}
	slices.SortFunc(tb.keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	other := digest.SHA512.FromString("a")
	tb.other = map[digest.Digest]uint32{other: 4}
	for _, s := range names {
		d := digest.FromString(s)
		i, ok := tb.index(d)
		assert.True(t, ok, s)
		k, _ := sha256Key(d)
		assert.Equal(t, k, tb.keys[i], s)
	}
	_, ok := tb.index(digest.FromString("e"))
	assert.False(t, ok, "not in the table")
	i, ok := tb.index(other)
	assert.True(t, ok, "another algorithm")
	assert.EqualValues(t, 4, i)
	_, ok = tb.index(digest.SHA512.FromString("b"))
	assert.False(t, ok)
}

// TestBlobTableSortKeys: a listing out of digest order is sorted, sizes
// following their keys, and a repeated digest kept once.
func TestBlobTableSortKeys(t *testing.T) {
	var tb blobTable
	for _, s := range []string{"c", "a", "bb", "a", "dddd"} {
		k, _ := sha256Key(digest.FromString(s))
		tb.keys = append(tb.keys, k)
		tb.sizes = append(tb.sizes, int64(len(s)))
	}
	tb.sortKeys()
	assert.Len(t, tb.keys, 4)
	assert.True(t, slices.IsSortedFunc(tb.keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }))
	for _, s := range []string{"a", "bb", "c", "dddd"} {
		i, ok := tb.index(digest.FromString(s))
		assert.True(t, ok, s)
		assert.EqualValues(t, len(s), tb.sizes[i], s)
	}
}

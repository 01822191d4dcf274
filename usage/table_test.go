package usage

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	var keys [][32]byte
	for _, s := range names {
		k, _ := sha256Key(digest.FromString(s))
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	for _, k := range keys {
		tb.add(k, 1)
	}
	other := digest.SHA512.FromString("a")
	tb.other = map[digest.Digest]uint32{other: 4}
	for _, s := range names {
		d := digest.FromString(s)
		i, ok := tb.index(d)
		assert.True(t, ok, s)
		k, _ := sha256Key(d)
		assert.Equal(t, k, *tb.key(int(i)), s)
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
	// More than one chunk, in reverse order, every digest twice.
	n := chunkLen + chunkLen/2
	for i := 2*n - 1; i >= 0; i-- {
		d := digest.FromString(fmt.Sprint(i / 2))
		k, _ := sha256Key(d)
		tb.add(k, int64(i/2))
	}
	tb.sortKeys()
	assert.Equal(t, n, tb.n)
	assert.Len(t, tb.chunks, 2)
	for i := 1; i < tb.n; i++ {
		require.Negative(t, bytes.Compare(tb.key(i - 1)[:], tb.key(i)[:]), "sorted, no repeats")
	}
	for _, v := range []int{0, 1, chunkLen, n - 1} {
		i, ok := tb.index(digest.FromString(fmt.Sprint(v)))
		assert.True(t, ok, v)
		assert.EqualValues(t, v, tb.size(i), "the size follows its key")
	}
}

package check_test

import (
	"context"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOrphanMessage: an orphan blob is described as what it is, not linked
// and not referenced.
func TestOrphanMessage(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	d, err := regstoretest.OrphanBlob(s, []byte("nobody's"))
	require.NoError(t, err)
	problems := runCheck(t, s, true)
	require.Len(t, problems, 1)
	assert.Equal(t, check.BlobOrphan, problems[0].Kind)
	assert.Equal(t, d, problems[0].Digest)
	assert.NotContains(t, problems[0].Message, "is linked")
	assert.Contains(t, problems[0].Message, "is neither linked in any repository nor referenced by any manifest")
}

// TestProgressCounts: Progress reports files walked, then blobs and bytes
// re-hashed out of totals known when the phase starts.
func TestProgressCounts(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	r := mustRepo(t, s, "app")
	regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 1000)}}, "v1")
	require.NoError(t, regstoretest.TempFile(s, "app", "v1"))
	var seen []check.Progress
	for _, err := range check.Problems(context.Background(), s, check.Options{Progress: func(p check.Progress) { seen = append(seen, p) }}) {
		require.NoError(t, err)
	}
	require.NotEmpty(t, seen)
	last := seen[len(seen)-1]
	assert.Equal(t, "rehash", last.Phase)
	assert.Equal(t, 1, last.Problems)
	assert.Equal(t, 3, last.TotalBlobs) // manifest, config, layer
	assert.Equal(t, last.TotalBlobs, last.Blobs)
	assert.Equal(t, last.TotalBytes, last.Bytes)
	assert.Greater(t, last.Files, 5)
	var walkFiles int
	for i, p := range seen {
		if p.Phase == "walk" {
			assert.Zero(t, p.TotalBlobs, i)
			walkFiles = max(walkFiles, p.Files)
		} else {
			assert.Equal(t, last.TotalBytes, p.TotalBytes, "the total is known from the start of the phase (%d)", i)
		}
		if i > 0 {
			assert.GreaterOrEqual(t, p.Blobs, seen[i-1].Blobs)
		}
	}
	assert.Equal(t, last.Files, walkFiles)
}

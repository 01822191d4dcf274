package gc_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSweepStopsOnUnreadableYoungManifest: a revision link written after
// the plan (young) whose manifest cannot be parsed leaves what it
// references unknown, so the sweep stops and removes nothing, rather than
// remove blobs the new manifest may need.
func TestSweepStopsOnUnreadableYoungManifest(t *testing.T) {
	ctx := context.Background()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	orphan, err := s.PutBlob(bytes.NewReader([]byte("a layer nothing references yet")), "", -1)
	require.NoError(t, err)
	now := time.Now()
	opts := gc.Options{Grace: time.Hour, Now: func() time.Time { return now.Add(2 * time.Hour) }}
	plan, err := gc.Mark(ctx, s, opts)
	require.NoError(t, err)
	require.Contains(t, plan.Blobs, orphan.Digest())

	// A push lands after the plan: its manifest data is not a manifest.
	bogus, err := s.PutBlob(bytes.NewReader([]byte("{not json")), "", -1)
	require.NoError(t, err)
	link := s.Layout().RevisionLink("app", bogus.Digest())
	require.NoError(t, regstore.WriteLink(m, link, bogus.Digest()))
	require.NoError(t, m.Chtimes(link, now.Add(3*time.Hour))) // younger than the cutoff

	_, err = gc.Sweep(ctx, s, plan, opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "young manifest cannot be read")
	_, err = s.Blob(orphan.Digest())
	assert.NoError(t, err, "the planned blob is still there")
}

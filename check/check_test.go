package check_test

import (
	"context"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkKinds(t *testing.T, s *regstore.Store, opts check.Options) map[check.ProblemKind]int {
	t.Helper()
	kinds := map[check.ProblemKind]int{}
	for p, err := range check.Problems(context.Background(), s, opts) {
		require.NoError(t, err)
		t.Log(p.Kind, p.Message)
		kinds[p.Kind]++
	}
	return kinds
}

func TestCheckCleanAndBroken(t *testing.T) {
	g := buildGCTree(t)
	kinds := checkKinds(t, g.s, check.Options{})
	assert.Empty(t, kinds, "Check on a clean tree")

	w := g.s.FS().(regstore.WriteFS)
	l := g.s.Layout()
	backendtest.Put(t, w, l.TagCurrent("a", "latest"), g.tagged.Digest().String()+"\n")
	backendtest.Put(t, w, l.BlobData(layerOf(t, g.tagged)), "corrupted")
	backendtest.Put(t, w, l.Root()+"/stray", "x")
	kinds = checkKinds(t, g.s, check.Options{})
	assert.Equal(t, 1, kinds[check.LinkTrailingBytes])
	assert.Equal(t, 1, kinds[check.BlobCorrupt])
	assert.Equal(t, 1, kinds[check.UnknownFileInTree])
	kinds = checkKinds(t, g.s, check.Options{LinksOnly: true})
	assert.Zero(t, kinds[check.BlobCorrupt], "links-only skips re-hashing")
}

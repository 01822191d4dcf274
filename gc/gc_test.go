package gc_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gcTree builds: repo a with a tagged image, an untagged (moved-away)
// image, a tagged index with untagged children, a referrer of the tagged
// image, an orphan referrer, and an unreferenced linked blob; repo b
// (no tags directory) with one untagged image.
type gcTree struct {
	s                                            *regstore.Store
	tagged, old, index, child, sig, orphan, bImg *regstore.Manifest
	looseBlob                                    digest.Digest
}

func buildGCTree(t *testing.T) gcTree {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	a := mustRepo(t, s, "a")
	var g gcTree
	g.s = s
	g.old = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 10)}}, "latest")
	g.tagged = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 10)}}, "latest")
	g.child = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(3, 10)}})
	g.index = regstoretest.PushIndex(t, a, "", []*regstore.Manifest{g.child}, "multi")
	sigImg := regstoretest.Image{ArtifactType: "application/vnd.example.sig", Config: []byte("{}"), ConfigMediaType: v1.MediaTypeEmptyJSON,
		Layers: []regstoretest.Layer{regstoretest.RandomLayer(4, 10)}, Subject: ptr(g.tagged.Descriptor())}
	g.sig = regstoretest.Push(t, a, sigImg)
	orphanSubject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4}
	sigImg.Subject, sigImg.Layers = &orphanSubject, []regstoretest.Layer{regstoretest.RandomLayer(5, 10)}
	g.orphan = regstoretest.Push(t, a, sigImg)
	loose, err := a.PutBlob(regstoretest.RandomLayer(6, 10).Reader(), "", -1)
	require.NoError(t, err)
	g.looseBlob = loose.Digest()
	b := mustRepo(t, s, "b")
	g.bImg = regstoretest.Push(t, b, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(7, 10)}})
	return g
}

func layerOf(t *testing.T, m *regstore.Manifest) digest.Digest {
	t.Helper()
	require.NotEmpty(t, m.Layers())
	return m.Layers()[0].Digest
}

func TestGCPlan(t *testing.T) {
	ctx := context.Background()
	g := buildGCTree(t)

	plan, err := gc.Mark(ctx, g.s, gc.Options{Grace: -1})
	require.NoError(t, err)
	assert.Equal(t, []digest.Digest{g.looseBlob}, plan.Blobs, "without delete-untagged only the loose blob goes")
	assert.Equal(t, map[string][]digest.Digest{"a": {g.looseBlob}}, plan.LayerLinks)
	assert.Empty(t, plan.Manifests)

	plan, err = gc.Mark(ctx, g.s, gc.Options{Grace: -1, DeleteUntagged: true})
	require.NoError(t, err)
	assert.ElementsMatch(t, []digest.Digest{g.old.Digest()}, plan.Manifests["a"], "untagged in a: only the old image (child, referrers kept)")
	assert.ElementsMatch(t, []digest.Digest{g.bImg.Digest()}, plan.Manifests["b"], "b has no tags directory: its manifest still goes")
	wantBlobs := []digest.Digest{g.looseBlob, g.old.Digest(), layerOf(t, g.old), g.bImg.Digest(), layerOf(t, g.bImg)}
	for _, d := range wantBlobs {
		assert.Contains(t, plan.Blobs, d)
	}
	for _, m := range []*regstore.Manifest{g.tagged, g.index, g.child, g.sig, g.orphan} {
		assert.NotContains(t, plan.Blobs, m.Digest(), "kept manifest data")
		for ref := range m.References() {
			if ref.Digest != digest.FromString("gone") {
				assert.NotContains(t, plan.Blobs, ref.Digest, "kept reference")
			}
		}
	}
	js, err := json.Marshal(plan)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"layerLinks"`)

	plan, err = gc.Mark(ctx, g.s, gc.Options{Grace: -1, DeleteUntagged: true, DropOrphanReferrers: true})
	require.NoError(t, err)
	assert.ElementsMatch(t, []digest.Digest{g.old.Digest(), g.orphan.Digest()}, plan.Manifests["a"], "orphan referrer dropped on request")

	// Grace: everything was just written, so the default window keeps all.
	plan, err = gc.Mark(ctx, g.s, gc.Options{DeleteUntagged: true})
	require.NoError(t, err)
	assert.Empty(t, plan.Blobs)
	assert.Empty(t, plan.Manifests)
	assert.Empty(t, plan.LayerLinks)
}

func TestGCApply(t *testing.T) {
	ctx := context.Background()
	g := buildGCTree(t)
	opts := gc.Options{Grace: -1, DeleteUntagged: true}
	plan, err := gc.Mark(ctx, g.s, opts)
	require.NoError(t, err)
	_, err = gc.Sweep(ctx, g.s, plan, opts)
	require.NoError(t, err)

	again, err := gc.Mark(ctx, g.s, opts)
	require.NoError(t, err)
	assert.Empty(t, again.Blobs, "second plan after apply")
	assert.Empty(t, again.Manifests)
	assert.Empty(t, again.LayerLinks)

	a := mustRepo(t, g.s, "a")
	for _, tag := range []string{"latest", "multi"} {
		tg, err := a.Tag(tag)
		require.NoError(t, err)
		m, err := tg.Resolve()
		require.NoError(t, err, "Resolve(%s) after GC", tag)
		for ref := range m.References() {
			if m.IsIndex() {
				_, err = a.Manifest(ref.Digest)
			} else {
				_, err = a.Blob(ref.Digest)
			}
			assert.NoError(t, err, "reference %s of %s after GC", ref.Digest, tag)
		}
	}
	_, err = a.Manifest(g.old.Digest())
	assert.ErrorIs(t, err, fs.ErrNotExist)
	// No dangling revision link in b (the registry's bug).
	for e, err := range g.s.Walk() {
		require.NoError(t, err)
		if e.Kind == regstore.RevisionLink && e.Repository == "b" {
			t.Errorf("revision link left in b: %s", e.Path)
		}
	}
	backendtest.Clean(t, g.s.FS(), ".")
}

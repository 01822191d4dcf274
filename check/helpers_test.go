package check_test

import (
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/require"
)

// Helpers shared by this package's tests.

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

func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

func layerOf(t *testing.T, m *regstore.Manifest) digest.Digest {
	t.Helper()
	require.NotEmpty(t, m.Layers())
	return m.Layers()[0].Digest
}

func ptr[T any](v T) *T { return &v }

// gcTree builds: repo a with a tagged image, an untagged (moved-away)
// image, a tagged index with untagged children, a referrer of the tagged
// image, an orphan referrer, and an unreferenced linked blob; repo b
// (no tags directory) with one untagged image.
type gcTree struct {
	s                                            *regstore.Store
	tagged, old, index, child, sig, orphan, bImg *regstore.Manifest
	looseBlob                                    digest.Digest
}

func mustRepo(t *testing.T, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

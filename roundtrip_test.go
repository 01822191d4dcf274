package regstore_test

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustRepo(t *testing.T, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
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

func names[T interface{ Name() string }](xs []T) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.Name())
	}
	return out
}

// TestRoundTrip builds a multi-image tree through the public API on both
// backends and reads it back.
func TestRoundTrip(t *testing.T) {
	for _, bk := range []struct {
		name string
		new  func(*testing.T) regstore.WriteFS
	}{{"Dir", newDir}, {"MemFS", newMem}} {
		t.Run(bk.name, func(t *testing.T) {
			s, err := regstore.Open(bk.new(t))
			require.NoError(t, err)
			shared := regstoretest.RandomLayer(1, 100)

			alpine := mustRepo(t, s, "library/alpine")
			dockerImg := regstoretest.Push(t, alpine, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
				Layers: []regstoretest.Layer{shared, regstoretest.RandomLayer(2, 50)}}, "latest", "3.20")

			app := mustRepo(t, s, "team/app")
			v1img := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{shared}}, "v1", "stable")
			v2img := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{shared, regstoretest.RandomLayer(3, 10)}}, "v2")
			st, err := app.Tag("stable")
			require.NoError(t, err)
			require.NoError(t, st.Set(v2img.Digest()), "moving tag stable")

			web := mustRepo(t, s, "team/app/web")
			amd := regstoretest.Push(t, web, regstoretest.Image{Layers: []regstoretest.Layer{shared}})
			arm := regstoretest.Push(t, web, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(4, 10)}, Architecture: "arm64"})
			list := regstoretest.PushIndex(t, web, regstore.MediaTypeDockerManifestList, []*regstore.Manifest{amd, arm}, "list")
			inner := regstoretest.PushIndex(t, web, "", []*regstore.Manifest{amd, arm})
			outer := regstoretest.PushIndex(t, web, "", []*regstore.Manifest{inner}, "nested")
			sig := regstoretest.Push(t, web, regstoretest.Image{ArtifactType: "application/vnd.example.sig",
				Config: []byte("{}"), ConfigMediaType: v1.MediaTypeEmptyJSON, Subject: ptr(amd.Descriptor()),
				Layers: []regstoretest.Layer{regstoretest.NewLayer(map[string]string{"sig": "x"})}})

			// Catalog order.
			assert.Equal(t, []string{"library/alpine", "team/app", "team/app/web"}, names(collect(t, s.Repositories())))

			// Tags resolve to what was pushed.
			wantTags := map[string]map[string]digest.Digest{
				"library/alpine": {"3.20": dockerImg.Digest(), "latest": dockerImg.Digest()},
				"team/app":       {"stable": v2img.Digest(), "v1": v1img.Digest(), "v2": v2img.Digest()},
				"team/app/web":   {"list": list.Digest(), "nested": outer.Digest()},
			}
			for repo, tags := range wantTags {
				r := mustRepo(t, s, repo)
				got := map[string]digest.Digest{}
				for _, tg := range collect(t, r.Tags()) {
					m, err := tg.Resolve()
					require.NoError(t, err, "Resolve(%s)", tg)
					got[tg.Name()] = m.Digest()
				}
				assert.Equal(t, tags, got, "tags of %s", repo)
			}

			// Moved tag keeps its history.
			hist := collect(t, st.History())
			assert.ElementsMatch(t, []digest.Digest{v1img.Digest(), v2img.Digest()}, hist, "History(stable)")

			// Manifests and their media types.
			for _, m := range []*regstore.Manifest{amd, arm, list, inner, outer, sig} {
				got, err := web.Manifest(m.Digest())
				require.NoError(t, err)
				assert.Equal(t, m.MediaType(), got.MediaType())
				assert.Equal(t, m.Bytes(), got.Bytes())
			}
			mans := collect(t, web.Manifests())
			assert.Len(t, mans, 6)
			assert.True(t, slices.IsSorted(mans))
			subj, ok := sig.Subject()
			require.True(t, ok)
			assert.Equal(t, amd.Digest(), subj.Digest)
			assert.Equal(t, "application/vnd.example.sig", sig.ArtifactType())
			got, err := alpine.Manifest(dockerImg.Digest())
			require.NoError(t, err)
			assert.Equal(t, regstore.MediaTypeDockerManifest, got.MediaType())

			// Shared layer stored once, linked in three repositories.
			sharedDigest := digest.FromBytes(shared.Compressed)
			for _, r := range []*regstore.Repository{alpine, app, web} {
				assert.Contains(t, collect(t, r.Layers()), sharedDigest, "Layers(%s)", r.Name())
			}
			blobs := collect(t, s.Blobs())
			assert.Equal(t, 1, countOf(blobs, sharedDigest))
			for _, d := range blobs {
				b, err := s.Blob(d)
				require.NoError(t, err)
				assert.NoError(t, b.Verify(), "Verify(%s)", d)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func countOf[T comparable](xs []T, x T) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

package regstore_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/treearchive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registryExpect is testdata/registry-<version>.expect.json: what the real
// registry's API reported about the tree in the matching .txtar before it
// was stopped (written by interop's TestGenerateTestdata).
type registryExpect struct {
	Catalog          []string                     `json:"catalog"`
	Tags             map[string]map[string]string `json:"tags"`
	Manifests        map[string][]string          `json:"manifests"`
	Blobs            map[string][]string          `json:"blobs"`
	MediaTypes       map[string]string            `json:"media_types"`
	DeletedManifests map[string][]string          `json:"deleted_manifests"`
	DeletedTags      map[string][]string          `json:"deleted_tags"`
	Uploads          map[string][]string          `json:"uploads"`
}

func readRegistryExpect(t *testing.T, version string) registryExpect {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "registry-"+version+".expect.json"))
	require.NoError(t, err)
	var e registryExpect
	require.NoError(t, json.Unmarshal(b, &e))
	require.NotEmpty(t, e.Catalog)
	return e
}

// testdataBackends load a committed registry-written tree into each backend.
var testdataBackends = []struct {
	name string
	load func(t *testing.T, archive string) fs.FS
}{
	{"MemFS", func(t *testing.T, archive string) fs.FS {
		m, err := treearchive.LoadMemFS(archive)
		require.NoError(t, err)
		return m
	}},
	{"Dir", func(t *testing.T, archive string) fs.FS {
		root := t.TempDir()
		require.NoError(t, treearchive.LoadDir(archive, root))
		d, err := regstore.OpenDir(root)
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}},
}

// TestRegistryWrittenTrees reads the trees that real registries (v3.1.2 and
// 2.8.2) wrote, and checks that regstore sees exactly what the registry's
// API reported about them. No registry is needed.
func TestRegistryWrittenTrees(t *testing.T) {
	for _, version := range []string{"v3", "v2.8"} {
		exp := readRegistryExpect(t, version)
		archive := filepath.Join("testdata", "registry-"+version+".txtar")
		for _, bk := range testdataBackends {
			t.Run(version+"/"+bk.name, func(t *testing.T) {
				s, err := regstore.Open(bk.load(t, archive))
				require.NoError(t, err)
				checkRegistryTree(t, s, version, exp)
			})
		}
	}
}

func checkRegistryTree(t *testing.T, s *regstore.Store, version string, exp registryExpect) {
	t.Run("catalog", func(t *testing.T) {
		got, err := s.Catalog(0, "")
		require.NoError(t, err)
		if version == "v3" {
			assert.Equal(t, exp.Catalog, got, "v3 catalog order")
		} else {
			// 2.8 lists repositories in directory order, unsorted.
			assert.ElementsMatch(t, exp.Catalog, got)
		}
		// Paging through regstore loses nothing and keeps the order.
		var paged []string
		for last := ""; ; {
			page, err := s.Catalog(2, last)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			last = page[len(page)-1]
		}
		assert.Equal(t, got, paged, "Catalog(2, last) pages")
	})

	t.Run("tags", func(t *testing.T) {
		for _, repo := range exp.Catalog {
			r := mustRepo(t, s, repo)
			got := map[string]string{}
			var order []string
			for tg, err := range r.Tags() {
				require.NoError(t, err)
				order = append(order, tg.Name())
				m, err := tg.Resolve()
				if assert.NoError(t, err, "Resolve(%s)", tg) {
					got[tg.Name()] = m.Digest().String()
				}
				hist := collect(t, tg.History())
				assert.Contains(t, hist, m.Digest(), "History(%s) holds the current digest", tg)
			}
			assert.Equal(t, exp.Tags[repo], got, "tags of %s", repo)
			assert.True(t, slices.IsSorted(order), "Tags(%s) sorted: %v", repo, order)
		}
		for repo, tags := range exp.DeletedTags {
			for _, name := range tags {
				tg, err := mustRepo(t, s, repo).Tag(name)
				require.NoError(t, err)
				_, err = tg.Digest()
				assert.ErrorIs(t, err, fs.ErrNotExist, "deleted tag %s:%s", repo, name)
			}
		}
	})

	t.Run("manifests", func(t *testing.T) {
		for _, repo := range exp.Catalog {
			r := mustRepo(t, s, repo)
			for _, d := range exp.Manifests[repo] {
				m, err := r.Manifest(digest.Digest(d))
				if !assert.NoError(t, err, "Manifest(%s@%s)", repo, d) {
					continue
				}
				assert.Equal(t, d, m.Digest().String())
				assert.Equal(t, exp.MediaTypes[d], m.MediaType(), "media type of %s@%s", repo, d)
				assert.Equal(t, digest.FromBytes(m.Bytes()).String(), d)
			}
			// The registry's enumeration and the API agree: every revision
			// link whose data exists, and nothing else.
			assert.ElementsMatch(t, exp.Manifests[repo], strs(collect(t, r.Manifests())), "Manifests(%s)", repo)
		}
		for repo, ds := range exp.DeletedManifests {
			r := mustRepo(t, s, repo)
			for _, d := range ds {
				_, err := r.Manifest(digest.Digest(d))
				assert.ErrorIs(t, err, fs.ErrNotExist, "deleted manifest %s@%s", repo, d)
				_, err = s.Blob(digest.Digest(d))
				assert.NoError(t, err, "the data of deleted manifest %s stays until GC", d)
			}
		}
	})

	t.Run("blobs", func(t *testing.T) {
		for _, repo := range exp.Catalog {
			r := mustRepo(t, s, repo)
			for _, d := range exp.Blobs[repo] {
				b, err := r.Blob(digest.Digest(d))
				if !assert.NoError(t, err, "Blob(%s@%s)", repo, d) {
					continue
				}
				assert.Equal(t, d, b.Digest().String())
				assert.NoError(t, b.Verify(), "Verify(%s@%s)", repo, d)
			}
			assert.ElementsMatch(t, exp.Blobs[repo], strs(collect(t, r.Layers())), "Layers(%s)", repo)
			// A manifest is never a blob of its repository.
			for _, d := range exp.Manifests[repo] {
				_, err := r.Blob(digest.Digest(d))
				assert.ErrorIs(t, err, fs.ErrNotExist, "manifest %s@%s as a blob", repo, d)
			}
		}
		for d, err := range s.Blobs() {
			require.NoError(t, err)
			b, err := s.Blob(d)
			require.NoError(t, err)
			assert.NoError(t, b.Verify(), "Verify(%s)", d)
		}
	})

	t.Run("uploads", func(t *testing.T) {
		for _, repo := range exp.Catalog {
			var ids []string
			for u, err := range mustRepo(t, s, repo).Uploads() {
				require.NoError(t, err)
				ids = append(ids, u.ID)
				assert.False(t, u.StartedAt.IsZero(), "startedat of %s", u.Path())
				assert.Positive(t, u.Size, "partial data of %s", u.Path())
			}
			assert.Equal(t, exp.Uploads[repo], ids, "Uploads(%s)", repo)
		}
	})

	t.Run("walk", func(t *testing.T) {
		kinds := map[regstore.EntryKind]int{}
		for e, err := range s.Walk() {
			require.NoError(t, err)
			kinds[e.Kind]++
			assert.NotEqual(t, regstore.UnknownFile, e.Kind, "unclassified file %s", e.Path)
			if e.Repository != "" {
				assert.Contains(t, exp.Catalog, e.Repository, "%s", e.Path)
			}
		}
		var seen, counts []string
		for _, k := range slices.Sorted(maps.Keys(kinds)) {
			seen = append(seen, k.String())
			counts = append(counts, fmt.Sprintf("%s: %d", k, kinds[k]))
		}
		t.Logf("kinds: %s", strings.Join(counts, ", "))
		assert.Equal(t, []string{"blob data", "layer link", "revision link", "tag current link", "tag index link", "upload"}, seen)

		nBlobs := len(collect(t, s.Blobs()))
		nLinks, nRevs, nTags := 0, 0, 0
		for _, repo := range exp.Catalog {
			nLinks += len(exp.Blobs[repo])
			nRevs += len(exp.Manifests[repo])
			nTags += len(exp.Tags[repo])
		}
		assert.Equal(t, nBlobs, kinds[regstore.BlobData])
		assert.Equal(t, nLinks, kinds[regstore.LayerLink])
		assert.Equal(t, nRevs, kinds[regstore.RevisionLink])
		assert.Equal(t, nTags, kinds[regstore.TagCurrentLink])
	})
}

func strs[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

package regstoretest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var smallTree = regstoretest.GenerateOptions{
	Repositories:      12,
	TagsPerRepo:       5,
	ManifestsPerRepo:  6,
	LayersPerManifest: 3,
	SharedFraction:    0.5,
	UntaggedFraction:  0.34, // 2 of 6
	BlobSize:          100,
	Seed:              42,
}

func generate(t *testing.T, o regstoretest.GenerateOptions) (*regstore.Store, *regstore.MemFS, regstoretest.GenerateStats) {
	t.Helper()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	st, err := regstoretest.Generate(s, o)
	require.NoError(t, err)
	return s, m, st
}

func TestGenerateCounts(t *testing.T) {
	s, _, st := generate(t, smallTree)
	o := smallTree
	assert.Equal(t, o.Repositories, st.Repositories)
	assert.Equal(t, o.Repositories*o.ManifestsPerRepo, st.Manifests)
	assert.Equal(t, o.Repositories*2, st.UntaggedManifests)
	assert.Equal(t, o.Repositories*4, st.TaggedManifests)
	assert.Equal(t, o.Repositories*o.TagsPerRepo, st.Tags)
	assert.Len(t, st.Untagged, o.Repositories)
	assert.Positive(t, st.SharedLayers)
	assert.Less(t, st.SharedLayers, st.Layers)

	var repos []string
	mediaTypes := map[string]int{}
	blobs := map[digest.Digest]bool{}
	layers := map[digest.Digest]map[string]bool{} // layer → repositories
	links := 0
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		repos = append(repos, r.Name())
		current := map[digest.Digest]bool{}
		tags := 0
		for tag, err := range r.Tags() {
			require.NoError(t, err)
			tags++
			m, err := tag.Resolve() // every tag resolves
			require.NoError(t, err, "tag %s", tag)
			current[m.Digest()] = true
			var history []digest.Digest
			for d, err := range tag.History() {
				require.NoError(t, err)
				history = append(history, d)
			}
			assert.Contains(t, history, m.Digest())
		}
		assert.Equal(t, o.TagsPerRepo, tags, r.Name())
		assert.Len(t, current, 4, "every tagged manifest has a tag")

		var untagged []digest.Digest
		n := 0
		for d, err := range r.Manifests() {
			require.NoError(t, err)
			n++
			blobs[d] = true
			if !current[d] {
				untagged = append(untagged, d)
			}
			m, err := r.Manifest(d)
			require.NoError(t, err)
			mediaTypes[m.MediaType()]++
			assert.Len(t, m.Layers(), o.LayersPerManifest)
			for b := range m.Blobs() { // config and layers are linked
				blob, err := r.Blob(b.Digest)
				require.NoError(t, err, "%s: blob %s of %s", r.Name(), b.Digest, d)
				assert.Equal(t, b.Size, blob.Size())
				blobs[b.Digest] = true
			}
			for _, l := range m.Layers() {
				if layers[l.Digest] == nil {
					layers[l.Digest] = map[string]bool{}
				}
				layers[l.Digest][r.Name()] = true
			}
			checkDiffIDs(t, r, m)
		}
		assert.Equal(t, o.ManifestsPerRepo, n)
		slices.Sort(untagged)
		assert.Equal(t, st.Untagged[r.Name()], untagged, r.Name())
		for _, err := range r.Layers() {
			require.NoError(t, err)
			links++
		}
	}
	want := []string{}
	for i := range o.Repositories {
		want = append(want, regstoretest.RepositoryName(i))
	}
	assert.ElementsMatch(t, want, repos)
	assert.Equal(t, "org000/app000", repos[0])
	assert.Equal(t, "org001/app001", regstoretest.RepositoryName(11))
	assert.Equal(t, st.Manifests/2, mediaTypes[regstore.MediaTypeOCIManifest])
	assert.Equal(t, st.Manifests/2, mediaTypes[regstore.MediaTypeDockerManifest])
	assert.Equal(t, st.LayerLinks, links)
	assert.Len(t, layers, st.Layers)

	shared := 0
	for _, rs := range layers {
		if len(rs) > 1 {
			shared++
		}
	}
	assert.Positive(t, shared, "some layers are shared across repositories")

	var stored []digest.Digest
	var bytes int64
	for d, err := range s.Blobs() {
		require.NoError(t, err)
		stored = append(stored, d)
		b, err := s.Blob(d)
		require.NoError(t, err)
		require.NoError(t, b.Verify())
		bytes += b.Size()
	}
	assert.Len(t, stored, st.Blobs)
	assert.ElementsMatch(t, slices.Collect(maps.Keys(blobs)), stored, "no unreferenced blob data")
	assert.Equal(t, st.Bytes, bytes)
}

// checkDiffIDs checks that the config's diff_ids are the digests of the
// uncompressed layers, each a tar of one file of BlobSize bytes.
func checkDiffIDs(t *testing.T, r *regstore.Repository, m *regstore.Manifest) {
	t.Helper()
	cd, ok := m.Config()
	require.True(t, ok)
	var cfg v1.Image
	require.NoError(t, json.Unmarshal(readBlob(t, r, cd.Digest), &cfg))
	require.Len(t, cfg.RootFS.DiffIDs, len(m.Layers()))
	for i, l := range m.Layers() {
		zr, err := gzip.NewReader(bytes.NewReader(readBlob(t, r, l.Digest)))
		require.NoError(t, err)
		tarBytes, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Equal(t, cfg.RootFS.DiffIDs[i], digest.FromBytes(tarBytes))
		tr := tar.NewReader(bytes.NewReader(tarBytes))
		h, err := tr.Next()
		require.NoError(t, err)
		assert.EqualValues(t, smallTree.BlobSize, h.Size)
	}
}

func readBlob(t *testing.T, r *regstore.Repository, d digest.Digest) []byte {
	t.Helper()
	b, err := r.Blob(d)
	require.NoError(t, err)
	f, err := b.Open()
	require.NoError(t, err)
	defer f.Close()
	raw, err := io.ReadAll(f)
	require.NoError(t, err)
	return raw
}

// listing maps every path of fsys to its content ("/" for a directory).
func listing(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p] = "/"
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = string(b)
		return err
	}))
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	o := smallTree
	o.Repositories = 3
	_, m1, st1 := generate(t, o)
	_, m2, st2 := generate(t, o)
	assert.Equal(t, st1, st2)
	assert.Equal(t, listing(t, m1), listing(t, m2))
	o.Seed++
	_, m3, _ := generate(t, o)
	assert.NotEqual(t, listing(t, m1), listing(t, m3))
}

func TestGeneratePlanGC(t *testing.T) {
	s, _, st := generate(t, smallTree)
	ctx := context.Background()

	plan, err := gc.Mark(ctx, s, gc.Options{Grace: -1})
	require.NoError(t, err)
	assert.Empty(t, plan.Blobs)
	assert.Empty(t, plan.LayerLinks)
	assert.Empty(t, plan.Manifests)
	assert.Equal(t, st.Blobs, plan.Marked)

	plan, err = gc.Mark(ctx, s, gc.Options{Grace: -1, DeleteUntagged: true})
	require.NoError(t, err)
	assert.Equal(t, st.Untagged, plan.Manifests)

	// The blobs to go: the untagged manifests, their configs, and their
	// layers that no tagged manifest uses.
	kept := map[digest.Digest]bool{}
	var want []digest.Digest
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		for tag, err := range r.Tags() {
			require.NoError(t, err)
			m, err := tag.Resolve()
			require.NoError(t, err)
			kept[m.Digest()] = true
			for b := range m.Blobs() {
				kept[b.Digest] = true
			}
		}
	}
	for repo, ds := range st.Untagged {
		r, err := s.Repository(repo)
		require.NoError(t, err)
		for _, d := range ds {
			m, err := r.Manifest(d)
			require.NoError(t, err)
			want = append(want, d)
			for b := range m.Blobs() {
				if !kept[b.Digest] && !slices.Contains(want, b.Digest) {
					want = append(want, b.Digest)
				}
			}
		}
	}
	assert.ElementsMatch(t, want, plan.Blobs)
	assert.Equal(t, st.Blobs-len(want), plan.Marked)
}

func TestGenerateAllUntagged(t *testing.T) {
	o := regstoretest.GenerateOptions{Repositories: 2, ManifestsPerRepo: 2, LayersPerManifest: 1, UntaggedFraction: 1, Seed: 1}
	s, _, st := generate(t, o)
	assert.Equal(t, 4, st.UntaggedManifests)
	assert.Zero(t, st.Tags)
	r, err := s.Repository("org000/app001")
	require.NoError(t, err)
	for range r.Tags() {
		t.Fatal("no tags expected")
	}
}

func TestGenerateOptionErrors(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	for _, o := range []regstoretest.GenerateOptions{
		{Repositories: -1},
		{Repositories: 1, ManifestsPerRepo: 4, TagsPerRepo: 3},                      // 4 tagged, 3 tags
		{Repositories: 1, ManifestsPerRepo: 4, TagsPerRepo: 1, UntaggedFraction: 1}, // tags, nothing tagged
		{Repositories: 1, ManifestsPerRepo: 1, TagsPerRepo: 1, SharedFraction: 1.5},
		{Repositories: 20000},
	} {
		_, err := regstoretest.Generate(s, o)
		assert.Error(t, err, "%+v", o)
	}
}

func TestWriteTree(t *testing.T) {
	o := smallTree
	o.Repositories = 2
	s, m, _ := generate(t, o)
	// Leave an empty directory behind, as a manifest delete does.
	r, err := s.Repository("org000/app000")
	require.NoError(t, err)
	tag, err := r.Tag("latest")
	require.NoError(t, err)
	d, err := tag.Digest()
	require.NoError(t, err)
	require.NoError(t, r.DeleteManifest(d))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	link := s.Layout().RevisionLink("org000/app001", mustFirstManifest(t, s, "org000/app001"))
	require.NoError(t, m.Chtimes(link, old))

	dir := filepath.Join(t.TempDir(), "root")
	require.NoError(t, regstoretest.WriteTree(m, dir))
	want := listing(t, m)
	assert.Equal(t, "/", want[s.Layout().RevisionDir("org000/app000", d)], "an empty directory to copy")
	assert.Equal(t, want, listing(t, os.DirFS(dir)))
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(link)))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old), "file times are kept")

	// The copy is a store the library reads like the original.
	back, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	defer back.Close()
	s2, err := regstore.Open(back)
	require.NoError(t, err)
	n := 0
	for _, err := range s2.Repositories() {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 2, n)
}

func mustFirstManifest(t *testing.T, s *regstore.Store, repo string) digest.Digest {
	t.Helper()
	r, err := s.Repository(repo)
	require.NoError(t, err)
	for d, err := range r.Manifests() {
		require.NoError(t, err)
		return d
	}
	t.Fatal("no manifest")
	return ""
}

package regstore_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Helpers shared by this package's tests.

func layerOf(t *testing.T, m *regstore.Manifest) digest.Digest {
	t.Helper()
	require.NotEmpty(t, m.Layers())
	return m.Layers()[0].Digest
}

// mgNoTempFiles fails if a *.tmp file is left below dir.
func mgNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		assert.False(t, strings.HasSuffix(p, ".tmp"), "temporary file left: %s", p)
		return nil
	}))
}

func mgOpenDir(t *testing.T, dir string) *regstore.Dir {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// mgPopulate pushes a representative repository: a Docker schema2 image,
// OCI images (one with two tags), an OCI index of two platforms, an
// untagged referrer of v1 and an untagged image.
func mgPopulate(t *testing.T, r *regstore.Repository) mgImages {
	t.Helper()
	shared := regstoretest.RandomLayer(1, 300)
	var im mgImages
	im.docker = regstoretest.Push(t, r, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{shared, regstoretest.RandomLayer(2, 100<<10)}}, "docker")
	im.v1 = regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{shared}}, "v1", "stable")
	im.v2 = regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{shared, regstoretest.RandomLayer(3, 50)}})
	im.arm = regstoretest.Push(t, r, regstoretest.Image{Architecture: "arm64", Layers: []regstoretest.Layer{regstoretest.RandomLayer(4, 70)}})
	im.index = regstoretest.PushIndex(t, r, "", []*regstore.Manifest{im.v2, im.arm}, "multi")
	subj := im.v1.Descriptor()
	im.referrer = regstoretest.Push(t, r, regstoretest.Image{ArtifactType: "application/vnd.example.sbom",
		Config: []byte("{}"), ConfigMediaType: "application/vnd.oci.empty.v1+json", Subject: &subj,
		Layers: []regstoretest.Layer{regstoretest.RandomLayer(5, 20)}})
	im.untagged = regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(6, 30)}})
	return im
}

func mgState(t *testing.T, r *regstore.Repository) mgRepoState {
	t.Helper()
	st := mgRepoState{Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]string{}, Blobs: map[digest.Digest]string{}}
	for tg, err := range r.Tags() {
		require.NoError(t, err)
		m, err := tg.Resolve()
		require.NoError(t, err, "Resolve(%s)", tg)
		st.Tags[tg.Name()] = m.Digest()
	}
	for d, err := range r.Manifests() {
		require.NoError(t, err)
		m, err := r.Manifest(d)
		require.NoError(t, err, "Manifest(%s)", d)
		st.Manifests[d] = string(m.Bytes())
	}
	for d, err := range r.Layers() {
		require.NoError(t, err)
		st.Blobs[d] = mgReadBlob(t, r, d)
	}
	return st
}

func mgStore(t *testing.T, w fs.FS) *regstore.Store {
	t.Helper()
	s, err := regstore.Open(w)
	require.NoError(t, err)
	return s
}

// onBothBackends runs fn on a fresh, empty MemFS and a fresh, empty Dir.
func onBothBackends(t *testing.T, fn func(t *testing.T, w regstore.WriteFS)) {
	t.Helper()
	t.Run("MemFS", func(t *testing.T) { fn(t, regstore.NewMemFS()) })
	t.Run("Dir", func(t *testing.T) {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err, "OpenDir(t.TempDir())")
		t.Cleanup(func() { d.Close() })
		fn(t, d)
	})
}

// putUpload writes a session as the registry's POST and PATCH do
// (startedat, data, a hash state) and then sets its directory's
// modification time.
func putUpload(t *testing.T, s *regstore.Store, u testUpload) {
	t.Helper()
	w := s.FS().(regstore.WriteFS)
	dir := s.Layout().Upload(u.repo, u.id)
	if u.startedAt != "-" {
		backendtest.Put(t, w, dir+"/startedat", u.startedAt)
	}
	backendtest.Put(t, w, dir+"/data", "partial")
	backendtest.Put(t, w, dir+"/hashstates/sha256/7", "sha\x03state")
	c, ok := w.(regstore.ChtimesFS)
	require.True(t, ok, "%T has no Chtimes", w)
	require.NoError(t, c.Chtimes(dir, u.mtime), "Chtimes(%s)", dir)
	fi, err := fs.Stat(w, dir)
	require.NoError(t, err)
	require.True(t, fi.ModTime().Equal(u.mtime), "directory ModTime after Chtimes = %v, want %v", fi.ModTime(), u.mtime)
}

// readOnly hides every write method of fsys.
type readOnly struct{ fs.FS }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// testUpload is an upload session to hand-build.
type testUpload struct {
	repo, id  string
	startedAt string // content of startedat; "-" for no startedat file
	mtime     time.Time
}

// mgImages is what mgPopulate pushed into a repository.
type mgImages struct {
	docker, v1, v2, arm, index, referrer, untagged *regstore.Manifest
}

func mgReadBlob(t *testing.T, r *regstore.Repository, d digest.Digest) string {
	t.Helper()
	b, err := r.Blob(d)
	require.NoError(t, err, "Blob(%s)", d)
	f, err := b.Open()
	require.NoError(t, err)
	defer f.Close()
	data, err := io.ReadAll(f)
	require.NoError(t, err)
	require.Equal(t, d, d.Algorithm().FromBytes(data), "blob %s content", d)
	return string(data)
}

// mgRepoState is a repository as a client sees it: tags, manifests (with
// their bytes) and linked blobs (with their bytes).
type mgRepoState struct {
	Tags      map[string]digest.Digest
	Manifests map[digest.Digest]string
	Blobs     map[digest.Digest]string
}

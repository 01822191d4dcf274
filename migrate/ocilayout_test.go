package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgImages is what mgPopulate pushed into a repository.
type mgImages struct {
	docker, v1, v2, arm, index, referrer, untagged *regstore.Manifest
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

// mgRepoState is a repository as a client sees it: tags, manifests (with
// their bytes) and linked blobs (with their bytes).
type mgRepoState struct {
	Tags      map[string]digest.Digest
	Manifests map[digest.Digest]string
	Blobs     map[digest.Digest]string
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

// mgSubset is st restricted to the manifests in keep and the blobs they
// reference (in st's repository).
func mgSubset(t *testing.T, r *regstore.Repository, st mgRepoState, keep ...*regstore.Manifest) mgRepoState {
	t.Helper()
	out := mgRepoState{Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]string{}, Blobs: map[digest.Digest]string{}}
	var add func(m *regstore.Manifest)
	add = func(m *regstore.Manifest) {
		out.Manifests[m.Digest()] = string(m.Bytes())
		for b := range m.Blobs() {
			out.Blobs[b.Digest] = st.Blobs[b.Digest]
		}
		for _, c := range m.Children() {
			cm, err := r.Manifest(c.Digest)
			require.NoError(t, err)
			add(cm)
		}
	}
	for _, m := range keep {
		add(m)
	}
	for tag, d := range st.Tags {
		if _, ok := out.Manifests[d]; ok {
			out.Tags[tag] = d
		}
	}
	return out
}

type mgBackend struct {
	name string
	new  func(t *testing.T) regstore.WriteFS
}

var mgBackends = []mgBackend{
	{"MemFS", func(*testing.T) regstore.WriteFS { return regstore.NewMemFS() }},
	{"Dir", func(t *testing.T) regstore.WriteFS {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}},
}

func mgStore(t *testing.T, w fs.FS) *regstore.Store {
	t.Helper()
	s, err := regstore.Open(w)
	require.NoError(t, err)
	return s
}

// TestOCILayoutRoundTrip exports a repository to an OCI image layout and
// imports it into another store: same tags, same manifest bytes, same blob
// bytes, on every pair of backends.
func TestOCILayoutRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, from := range mgBackends {
		for _, to := range mgBackends {
			t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
				src := mustRepo(t, mgStore(t, from.new(t)), "team/app")
				im := mgPopulate(t, src)
				want := mgState(t, src)

				layout := to.new(t)
				stats, err := migrate.ExportOCILayout(ctx, src, layout, migrate.ExportOptions{})
				require.NoError(t, err)
				assert.Equal(t, 4, stats.Tags, "ExportOCILayout().Tags")
				assert.Equal(t, 0, stats.BlobsSkipped)
				mgCheckLayoutFiles(t, layout)

				var idx v1.Index
				require.NoError(t, json.Unmarshal(mgRead(t, layout, "index.json"), &idx))
				var refs []string
				untagged := 0
				for _, e := range idx.Manifests {
					if n := e.Annotations[v1.AnnotationRefName]; n != "" {
						refs = append(refs, n+"="+e.Digest.String())
					} else {
						untagged++
						assert.Equal(t, im.referrer.Digest(), e.Digest, "untagged index.json entry")
						assert.Equal(t, "application/vnd.example.sbom", e.ArtifactType)
					}
				}
				assert.ElementsMatch(t, []string{"docker=" + im.docker.Digest().String(), "v1=" + im.v1.Digest().String(),
					"stable=" + im.v1.Digest().String(), "multi=" + im.index.Digest().String()}, refs)
				assert.Equal(t, 1, untagged, "referrers listed in index.json")

				dst := mustRepo(t, mgStore(t, to.new(t)), "mirror/app")
				res, err := migrate.ImportOCILayout(ctx, dst, layout, migrate.ImportOptions{})
				require.NoError(t, err)
				got := mgState(t, dst)
				wantNow := mgSubset(t, src, want, im.docker, im.v1, im.index, im.referrer)
				assert.Equal(t, wantNow, got, "imported repository")
				assert.Len(t, res.Tags, 4)
				assert.Len(t, res.Manifests, 4, "top-level manifests (3 tagged + referrer)")
				assert.Empty(t, res.Skipped)
				assert.Equal(t, len(wantNow.Blobs), res.Stats.Blobs+res.Stats.BlobsSkipped, "blobs")
				assert.Equal(t, len(wantNow.Manifests), res.Stats.Manifests, "manifests")

				// Importing again changes nothing and copies nothing.
				res, err = migrate.ImportOCILayout(ctx, dst, layout, migrate.ImportOptions{})
				require.NoError(t, err)
				assert.Equal(t, 0, res.Stats.Blobs, "blobs copied by a re-import")
				assert.Equal(t, len(wantNow.Manifests), res.Stats.ManifestsSkipped)
				assert.Equal(t, wantNow, mgState(t, dst))

				// Untagged: everything, the untagged image too.
				layout2 := to.new(t)
				_, err = migrate.ExportOCILayout(ctx, src, layout2, migrate.ExportOptions{Untagged: true})
				require.NoError(t, err)
				all := mustRepo(t, mgStore(t, to.new(t)), "team/app")
				_, err = migrate.ImportOCILayout(ctx, all, layout2, migrate.ImportOptions{})
				require.NoError(t, err)
				assert.Equal(t, want, mgState(t, all), "round trip of the whole repository")
			})
		}
	}
}

// mgCheckLayoutFiles checks that every blob of an OCI layout hashes to its
// name and that oci-layout is right.
func mgCheckLayoutFiles(t *testing.T, fsys fs.FS) {
	t.Helper()
	assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(mgRead(t, fsys, "oci-layout")))
	n := 0
	require.NoError(t, fs.WalkDir(fsys, "blobs", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		n++
		c := strings.Split(p, "/")
		require.Len(t, c, 3, "blob path %s", p)
		assert.Equal(t, digest.NewDigestFromEncoded(digest.Algorithm(c[1]), c[2]), digest.FromBytes(mgRead(t, fsys, p)), "content of %s", p)
		return nil
	}))
	assert.NotZero(t, n, "blobs in the layout")
}

func mgRead(t *testing.T, fsys fs.FS, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	require.NoError(t, err, "ReadFile(%s)", name)
	return b
}

// mgWrite publishes a file in a backend.
func mgWrite(t *testing.T, w regstore.WriteFS, name string, data []byte) {
	t.Helper()
	f, err := w.Create(name)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Commit())
}

// mgLayout is a hand-made OCI layout.
type mgLayout struct {
	fs      *regstore.MemFS
	entries []v1.Descriptor
}

func newMGLayout(t *testing.T) *mgLayout {
	l := &mgLayout{fs: regstore.NewMemFS()}
	mgWrite(t, l.fs, "oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`))
	return l
}

func (l *mgLayout) blob(t *testing.T, data []byte) v1.Descriptor {
	d := digest.FromBytes(data)
	mgWrite(t, l.fs, path.Join("blobs/sha256", d.Encoded()), data)
	return v1.Descriptor{Digest: d, Size: int64(len(data))}
}

// image writes an OCI image with one layer and returns its descriptor.
func (l *mgLayout) image(t *testing.T, layer string, subject *v1.Descriptor) v1.Descriptor {
	cfg := l.blob(t, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = v1.MediaTypeImageConfig
	ld := l.blob(t, []byte(layer))
	ld.MediaType = v1.MediaTypeImageLayer
	raw, err := json.Marshal(v1.Manifest{Versioned: specsVersioned, MediaType: v1.MediaTypeImageManifest,
		Config: cfg, Layers: []v1.Descriptor{ld}, Subject: subject})
	require.NoError(t, err)
	d := l.blob(t, raw)
	d.MediaType = v1.MediaTypeImageManifest
	return d
}

func (l *mgLayout) entry(d v1.Descriptor, annotations ...string) {
	if len(annotations) > 0 {
		d.Annotations = map[string]string{}
		for i := 0; i+1 < len(annotations); i += 2 {
			d.Annotations[annotations[i]] = annotations[i+1]
		}
	}
	l.entries = append(l.entries, d)
}

func (l *mgLayout) commit(t *testing.T) fs.FS {
	raw, err := json.Marshal(v1.Index{Versioned: specsVersioned, Manifests: l.entries})
	require.NoError(t, err)
	mgWrite(t, l.fs, "index.json", raw)
	return l.fs
}

// TestImportOCILayoutTags checks how ref names become tags.
func TestImportOCILayoutTags(t *testing.T) {
	ctx := context.Background()
	l := newMGLayout(t)
	bare := l.image(t, "bare", nil)
	full := l.image(t, "full", nil)
	hub := l.image(t, "hub", nil)
	other := l.image(t, "other", nil)
	noName := l.image(t, "noname", nil)
	ref := l.image(t, "referrer", &bare)
	ctrd := l.image(t, "containerd", nil)
	l.entry(bare, v1.AnnotationRefName, "v1")
	l.entry(full, v1.AnnotationRefName, "registry.example:5000/library/alpine:3.20@"+full.Digest.String())
	l.entry(hub, v1.AnnotationRefName, "docker.io/library/alpine:edge")
	l.entry(other, v1.AnnotationRefName, "localhost/busybox:1")
	l.entry(noName)
	l.entry(ref)
	l.entry(ctrd, v1.AnnotationRefName, "ignored", "io.containerd.image.name", "alpine:ctr")
	src := l.commit(t)

	tags := func(res *migrate.ImportResult) map[string]digest.Digest {
		out := map[string]digest.Digest{}
		for _, tg := range res.Tags {
			out[tg.Tag] = tg.Digest
		}
		return out
	}
	t.Run("default", func(t *testing.T) {
		r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "alpine")
		res, err := migrate.ImportOCILayout(ctx, r, src, migrate.ImportOptions{})
		require.NoError(t, err)
		assert.Equal(t, map[string]digest.Digest{"v1": bare.Digest, "edge": hub.Digest, "ctr": ctrd.Digest}, tags(res))
		// registry.example:5000/library/alpine is another repository than
		// "alpine" (library/ is docker.io's only).
		assert.Equal(t, []string{"registry.example:5000/library/alpine:3.20@" + full.Digest.String(), "localhost/busybox:1"}, res.Skipped)
		var imported []digest.Digest
		for _, d := range res.Manifests {
			imported = append(imported, d.Digest)
		}
		assert.Equal(t, []digest.Digest{bare.Digest, hub.Digest, noName.Digest, ref.Digest, ctrd.Digest}, imported)
		st := mgState(t, r)
		assert.Len(t, st.Manifests, 5)
	})
	t.Run("mapping", func(t *testing.T) {
		r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "mirror")
		res, err := migrate.ImportOCILayout(ctx, r, src, migrate.ImportOptions{Tags: map[string]string{
			"v1":                     "one",
			"localhost/busybox:1":    "bb",
			noName.Digest.String():   "by-digest",
			"docker.io/library/gone": "x",
		}})
		require.NoError(t, err)
		assert.Equal(t, map[string]digest.Digest{"one": bare.Digest, "bb": other.Digest, "by-digest": noName.Digest}, tags(res))
		st := mgState(t, r)
		// The referrer of an imported manifest comes along, untagged.
		assert.Contains(t, st.Manifests, ref.Digest)
		assert.Len(t, st.Manifests, 4)
	})
	t.Run("conflict", func(t *testing.T) {
		r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "alpine")
		_, err := migrate.ImportOCILayout(ctx, r, src, migrate.ImportOptions{Tags: map[string]string{"v1": "same", "docker.io/library/alpine:edge": "same"}})
		require.ErrorIs(t, err, migrate.ErrInvalidSource)
		assert.ErrorIs(t, err, fs.ErrInvalid)
		ok, err := r.Exists()
		require.NoError(t, err)
		assert.False(t, ok, "nothing written after a refused import")
	})
	t.Run("bad tag", func(t *testing.T) {
		r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "alpine")
		_, err := migrate.ImportOCILayout(ctx, r, src, migrate.ImportOptions{Tags: map[string]string{"v1": "-bad"}})
		assert.ErrorIs(t, err, regstore.ErrInvalidTag)
	})
}

// TestImportOCILayoutRefused checks malformed and corrupt layouts: nothing
// referring to bad content is published.
func TestImportOCILayoutRefused(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T) (*mgLayout, v1.Descriptor, v1.Descriptor) {
		l := newMGLayout(t)
		img := l.image(t, strings.Repeat("layer", 1000), nil)
		l.entry(img, v1.AnnotationRefName, "v1")
		l.commit(t)
		var m v1.Manifest
		require.NoError(t, json.Unmarshal(mgRead(t, l.fs, "blobs/sha256/"+img.Digest.Encoded()), &m))
		return l, img, m.Layers[0]
	}
	published := func(t *testing.T, r *regstore.Repository) int {
		n := 0
		for _, err := range r.Manifests() {
			require.NoError(t, err)
			n++
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, l *mgLayout, img, layer v1.Descriptor)
		want   error
	}{
		{"corrupt layer", func(t *testing.T, l *mgLayout, _, layer v1.Descriptor) {
			data := mgRead(t, l.fs, "blobs/sha256/"+layer.Digest.Encoded())
			data[10] ^= 0xff
			mgWrite(t, l.fs, "blobs/sha256/"+layer.Digest.Encoded(), data)
		}, regstore.ErrDigestMismatch},
		{"short layer", func(t *testing.T, l *mgLayout, _, layer v1.Descriptor) {
			mgWrite(t, l.fs, "blobs/sha256/"+layer.Digest.Encoded(), []byte("short"))
		}, regstore.ErrSizeMismatch},
		{"missing layer", func(t *testing.T, l *mgLayout, _, layer v1.Descriptor) {
			require.NoError(t, l.fs.Remove("blobs/sha256/"+layer.Digest.Encoded()))
		}, fs.ErrNotExist},
		{"corrupt manifest", func(t *testing.T, l *mgLayout, img, _ v1.Descriptor) {
			data := mgRead(t, l.fs, "blobs/sha256/"+img.Digest.Encoded())
			mgWrite(t, l.fs, "blobs/sha256/"+img.Digest.Encoded(), bytes.Replace(data, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1))
		}, regstore.ErrDigestMismatch},
		{"no oci-layout", func(t *testing.T, l *mgLayout, _, _ v1.Descriptor) {
			require.NoError(t, l.fs.Remove("oci-layout"))
		}, fs.ErrNotExist},
		{"layout version", func(t *testing.T, l *mgLayout, _, _ v1.Descriptor) {
			mgWrite(t, l.fs, "oci-layout", []byte(`{"imageLayoutVersion":"2.0.0"}`))
		}, migrate.ErrInvalidSource},
		{"index.json garbage", func(t *testing.T, l *mgLayout, _, _ v1.Descriptor) {
			mgWrite(t, l.fs, "index.json", []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x"}]}`))
		}, migrate.ErrInvalidSource},
		{"media type lies", func(t *testing.T, l *mgLayout, img, _ v1.Descriptor) {
			img.MediaType = v1.MediaTypeImageIndex
			raw, err := json.Marshal(v1.Index{Versioned: specsVersioned, Manifests: []v1.Descriptor{img}})
			require.NoError(t, err)
			mgWrite(t, l.fs, "index.json", raw)
		}, regstore.ErrManifestInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, img, layer := build(t)
			tc.change(t, l, img, layer)
			r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
			_, err := migrate.ImportOCILayout(ctx, r, l.fs, migrate.ImportOptions{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			var e *regstore.Error
			assert.True(t, errors.As(err, &e), "error %v is a *regstore.Error", err)
			assert.Zero(t, published(t, r), "manifests published")
			_, err = r.Tag("v1")
			require.NoError(t, err)
			tg, _ := r.Tag("v1")
			_, err = tg.Digest()
			assert.ErrorIs(t, err, fs.ErrNotExist, "tag set")
		})
	}
}

// TestOCILayoutHardLink imports with hard links: between two Dirs on one
// filesystem, and within one MemFS.
func TestOCILayoutHardLink(t *testing.T) {
	ctx := context.Background()
	t.Run("Dir", func(t *testing.T) {
		tmp := t.TempDir()
		srcDir := mgOpenDir(t, filepath.Join(tmp, "src"))
		src := mustRepo(t, mgStore(t, srcDir), "app")
		mgPopulate(t, src)
		want := mgState(t, src)
		layoutDir := mgOpenDir(t, filepath.Join(tmp, "layout"))
		_, err := migrate.ExportOCILayout(ctx, src, layoutDir, migrate.ExportOptions{Untagged: true})
		require.NoError(t, err)

		for _, trust := range []bool{false, true} {
			storeDir := mgOpenDir(t, t.TempDir())
			dst := mustRepo(t, mgStore(t, storeDir), "app")
			res, err := migrate.ImportOCILayout(ctx, dst, layoutDir, migrate.ImportOptions{HardLink: true, TrustDigests: trust})
			require.NoError(t, err)
			assert.Equal(t, want, mgState(t, dst))
			assert.Zero(t, res.Stats.Blobs, "blobs copied")
			assert.Equal(t, len(want.Blobs), res.Stats.BlobsLinked, "blobs linked")
			// The store's data file is the layout's file.
			for d := range want.Blobs {
				a, err := os.Stat(filepath.Join(layoutDir.Name(), "blobs/sha256", d.Encoded()))
				require.NoError(t, err)
				b, err := os.Stat(filepath.Join(storeDir.Name(), regstore.DefaultLayoutRoot, "blobs/sha256", d.Encoded()[:2], d.Encoded(), "data"))
				require.NoError(t, err)
				assert.True(t, os.SameFile(a, b), "blob %s is a hard link", d)
			}
			mgNoTempFiles(t, storeDir.Name())
		}

		// A corrupt layout file is refused before it is published, even
		// though the link was made.
		var victim digest.Digest
		for d, content := range want.Blobs {
			if len(content) > 1000 {
				victim = d
			}
		}
		p := filepath.Join(layoutDir.Name(), "blobs/sha256", victim.Encoded())
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		data[100] ^= 1
		require.NoError(t, os.Remove(p)) // do not change the source store's linked file
		require.NoError(t, os.WriteFile(p, data, 0o644))
		storeDir := mgOpenDir(t, t.TempDir())
		dst := mustRepo(t, mgStore(t, storeDir), "app")
		_, err = migrate.ImportOCILayout(ctx, dst, layoutDir, migrate.ImportOptions{HardLink: true})
		assert.ErrorIs(t, err, regstore.ErrDigestMismatch)
		_, err = mgStore(t, storeDir).Blob(victim)
		assert.ErrorIs(t, err, fs.ErrNotExist, "corrupt blob published")
		mgNoTempFiles(t, storeDir.Name())
		// Trusting digests lets it through: that is what trust means.
		_, err = migrate.ImportOCILayout(ctx, dst, layoutDir, migrate.ImportOptions{HardLink: true, TrustDigests: true})
		assert.NoError(t, err)
	})
	t.Run("MemFS", func(t *testing.T) {
		mem := regstore.NewMemFS()
		s := mgStore(t, mem)
		src := mustRepo(t, s, "app")
		mgPopulate(t, src)
		want := mgState(t, src)
		// The layout sits at the root of the same backend as the store.
		_, err := migrate.ExportOCILayout(ctx, src, mem, migrate.ExportOptions{Untagged: true})
		require.NoError(t, err)
		other, err := regstore.Open(mem, regstore.WithLayoutRoot("other/v2"), regstore.Create())
		require.NoError(t, err)
		dst := mustRepo(t, other, "app")
		res, err := migrate.ImportOCILayout(ctx, dst, mem, migrate.ImportOptions{HardLink: true})
		require.NoError(t, err)
		assert.Equal(t, want, mgState(t, dst))
		assert.Equal(t, len(want.Blobs), res.Stats.BlobsLinked)
	})
	t.Run("fallback", func(t *testing.T) {
		// A source that is not a Dir: the data is copied.
		layout := regstore.NewMemFS()
		src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
		mgPopulate(t, src)
		_, err := migrate.ExportOCILayout(ctx, src, layout, migrate.ExportOptions{})
		require.NoError(t, err)
		dst := mustRepo(t, mgStore(t, mgOpenDir(t, t.TempDir())), "app")
		res, err := migrate.ImportOCILayout(ctx, dst, layout, migrate.ImportOptions{HardLink: true})
		require.NoError(t, err)
		assert.Zero(t, res.Stats.BlobsLinked)
		assert.NotZero(t, res.Stats.Blobs)
	})
}

func mgOpenDir(t *testing.T, dir string) *regstore.Dir {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
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

// TestExportOCILayoutMerge exports two repositories into one layout, and
// exports chosen tags.
func TestExportOCILayoutMerge(t *testing.T) {
	ctx := context.Background()
	s := mgStore(t, regstore.NewMemFS())
	a := mustRepo(t, s, "a")
	b := mustRepo(t, s, "b")
	ia := regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(10, 10)}}, "x", "y")
	ib := regstoretest.Push(t, b, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(11, 10)}}, "y", "z")
	layout := regstore.NewMemFS()
	stats, err := migrate.ExportOCILayout(ctx, a, layout, migrate.ExportOptions{Tags: []string{"x", "y"}})
	require.NoError(t, err)
	assert.Equal(t, 2, stats.Tags)
	_, err = migrate.ExportOCILayout(ctx, b, layout, migrate.ExportOptions{Tags: []string{"y", "z"}})
	require.NoError(t, err)
	var idx v1.Index
	require.NoError(t, json.Unmarshal(mgRead(t, layout, "index.json"), &idx))
	var got []string
	for _, e := range idx.Manifests {
		got = append(got, e.Annotations[v1.AnnotationRefName]+"="+e.Digest.Encoded()[:8])
	}
	assert.Equal(t, []string{"x=" + ia.Digest().Encoded()[:8], "y=" + ib.Digest().Encoded()[:8], "z=" + ib.Digest().Encoded()[:8]}, got)
	assert.Equal(t, v1.MediaTypeImageIndex, idx.MediaType)

	_, err = migrate.ExportOCILayout(ctx, a, layout, migrate.ExportOptions{Tags: []string{"nope"}})
	assert.ErrorIs(t, err, fs.ErrNotExist)

	mgWrite(t, layout, "oci-layout", []byte(`{"imageLayoutVersion":"9"}`))
	_, err = migrate.ExportOCILayout(ctx, a, layout, migrate.ExportOptions{})
	assert.ErrorIs(t, err, migrate.ErrInvalidSource)
}

// TestImportProgress checks the progress callback's totals.
func TestImportProgress(t *testing.T) {
	ctx := context.Background()
	src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	mgPopulate(t, src)
	layout := regstore.NewMemFS()
	_, err := migrate.ExportOCILayout(ctx, src, layout, migrate.ExportOptions{})
	require.NoError(t, err)
	var calls []migrate.CopyStats
	dst := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	res, err := migrate.ImportOCILayout(ctx, dst, layout, migrate.ImportOptions{Workers: 3,
		Progress: func(s migrate.CopyStats) { calls = append(calls, s) }})
	require.NoError(t, err)
	require.NotEmpty(t, calls)
	last := calls[len(calls)-1]
	assert.Equal(t, res.Stats, last)
	assert.Equal(t, last.TotalBlobs, last.Blobs)
	assert.Equal(t, last.TotalBytes, last.Bytes)
	assert.True(t, slices.IsSortedFunc(calls, func(a, b migrate.CopyStats) int {
		return (a.Blobs + a.Manifests + a.Tags) - (b.Blobs + b.Manifests + b.Tags)
	}), "progress only grows")

	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	_, err = migrate.ImportOCILayout(ctx2, mustRepo(t, mgStore(t, regstore.NewMemFS()), "app"), layout, migrate.ImportOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

var specsVersioned = specs.Versioned{SchemaVersion: 2}

// TestImportOCILayoutSkippedUnread: entries that are not imported are not
// read, so a layout holding other repositories' images only in part still
// imports.
func TestImportOCILayoutSkippedUnread(t *testing.T) {
	l := newMGLayout(t)
	mine := l.image(t, "mine", nil)
	theirs := l.image(t, "theirs", nil)
	l.entry(mine, v1.AnnotationRefName, "v1")
	l.entry(theirs, v1.AnnotationRefName, "registry.example/other:v1")
	src := l.commit(t)
	require.NoError(t, l.fs.Remove("blobs/sha256/"+theirs.Digest.Encoded()))
	r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	res, err := migrate.ImportOCILayout(context.Background(), r, src, migrate.ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"registry.example/other:v1"}, res.Skipped)
	require.Len(t, res.Tags, 1)
	assert.Equal(t, mine.Digest, res.Tags[0].Digest)
}

// ExampleRepository_ImportOCILayout exports a repository to an OCI image
// layout and imports the layout into another store under another name.
func ExampleImportOCILayout() {
	ctx := context.Background()
	s, _ := regstore.Open(regstore.NewMemFS())
	app, _ := s.Repository("team/app")
	m, err := regstoretest.PushImage(app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 100)}}, "v1")
	if err != nil {
		fmt.Println(err)
		return
	}
	layout := regstore.NewMemFS() // or regstore.OpenDir(dir)
	if _, err := migrate.ExportOCILayout(ctx, app, layout, migrate.ExportOptions{}); err != nil {
		fmt.Println(err)
		return
	}

	other, _ := regstore.Open(regstore.NewMemFS())
	mirror, _ := other.Repository("mirror/app")
	res, err := migrate.ImportOCILayout(ctx, mirror, layout, migrate.ImportOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range res.Tags {
		fmt.Println(t.Tag, t.Digest == m.Digest())
	}
	// Output:
	// v1 true
}

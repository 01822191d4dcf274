package migrate_test

// Fuzz targets for what regstore reads from others: manifest bytes,
// names, tags and digests, and the import readers (an OCI image layout's
// oci-layout and index.json, a docker save archive's manifest.json).
// FuzzParseLink (link_test.go) and FuzzNamePath (layout_test.go) cover
// link files and the name → path mapping. Seed corpora are under
// testdata/fuzz/<target>/; .ci/fuzz runs each target for $FUZZTIME.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzWrapsDocumented reports whether err wraps one of fuzzImportErrors.
func fuzzWrapsDocumented(err error) bool {
	return slices.ContainsFunc(fuzzImportErrors, func(s error) bool { return errors.Is(err, s) })
}

// fuzzImage is a small real image: its manifest, config and layer.
type fuzzImage struct {
	manifest *regstore.Manifest
	blobs    map[digest.Digest][]byte // config and layer
	layer    regstoretest.Layer
	config   []byte
}

func newFuzzImage(tb testing.TB) fuzzImage {
	tb.Helper()
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(tb, err)
	r, err := s.Repository("src")
	require.NoError(tb, err)
	img := fuzzImage{layer: regstoretest.NewLayer(map[string]string{"hello": "world"}), blobs: map[digest.Digest][]byte{}}
	img.manifest, err = regstoretest.PushImage(r, regstoretest.Image{Layers: []regstoretest.Layer{img.layer}})
	require.NoError(tb, err)
	for desc := range img.manifest.Blobs() {
		b, err := r.Blob(desc.Digest)
		require.NoError(tb, err)
		rc, err := b.Open()
		require.NoError(tb, err)
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		require.NoError(tb, err)
		img.blobs[desc.Digest] = buf.Bytes()
	}
	cfg, _ := img.manifest.Config()
	img.config = img.blobs[cfg.Digest]
	return img
}

// fuzzCheckTree: after an import, whatever its outcome, every path of the
// store is a valid path below the layout root, and the integrity check finds
// no damage: nothing points at missing data.
func fuzzCheckTree(t *testing.T, s *regstore.Store, m *regstore.MemFS) {
	t.Helper()
	require.NoError(t, fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		assert.True(t, fs.ValidPath(p), "path %q", p)
		assert.True(t, p == "docker" || p == "docker/registry" || strings.HasPrefix(p, regstore.DefaultLayoutRoot), "path %q outside the layout", p)
		return nil
	}))
	for p, err := range check.Problems(context.Background(), s, check.Options{Workers: 1}) {
		require.NoError(t, err)
		switch p.Kind {
		case check.BlobOrphan, check.TempFileLeft:
		default:
			t.Errorf("Check after an import: %v", p)
		}
	}
}

// FuzzImportOCILayout: migrate.ImportOCILayout never panics on any
// oci-layout and index.json (over a layout holding one real image), fails
// only with the causes it documents, and leaves a tree with no damage.
// What it accepts it imports again the same way (idempotent).
func FuzzImportOCILayout(f *testing.F) {
	img := newFuzzImage(f)
	desc := img.manifest.Descriptor()
	entry := func(annotations map[string]string) []byte {
		d := desc
		d.Annotations = annotations
		b, err := json.Marshal(v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{d}})
		require.NoError(f, err)
		return b
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	f.Add(layout, entry(map[string]string{v1.AnnotationRefName: "v1"}))
	f.Add(layout, entry(map[string]string{v1.AnnotationRefName: "registry.example/fuzz:v2", migrate.AnnotationContainerdImageName: "docker.io/library/fuzz:latest"}))
	f.Add(layout, entry(nil))
	f.Add(layout, entry(map[string]string{v1.AnnotationRefName: "../../x"}))
	f.Add(layout, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1}]}`))
	f.Add([]byte(`{"imageLayoutVersion":"2.0.0"}`), entry(nil))
	f.Add([]byte(`{}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, layoutFile, index []byte) {
		src := fstest.MapFS{
			"oci-layout":                            {Data: layoutFile},
			"index.json":                            {Data: index},
			"blobs/sha256/" + desc.Digest.Encoded(): {Data: img.manifest.Bytes()},
		}
		for d, b := range img.blobs {
			src["blobs/sha256/"+d.Encoded()] = &fstest.MapFile{Data: b}
		}
		m := regstore.NewMemFS()
		s, err := regstore.Open(m)
		require.NoError(t, err)
		r, err := s.Repository("fuzz")
		require.NoError(t, err)
		res, err := migrate.ImportOCILayout(context.Background(), r, src, migrate.ImportOptions{Workers: 1})
		if err != nil {
			assert.True(t, fuzzWrapsDocumented(err), "ImportOCILayout(%q, %q) = %v: no documented cause", layoutFile, index, err)
			fuzzCheckTree(t, s, m)
			return
		}
		for _, tag := range res.Tags {
			assert.NoError(t, regstore.ValidateTag(tag.Tag), "ImportOCILayout(%q) set tag %q", index, tag.Tag)
			tg, err := r.Tag(tag.Tag)
			require.NoError(t, err)
			got, err := tg.Resolve()
			if assert.NoError(t, err, "Resolve(%q) after the import", tag.Tag) {
				assert.Equal(t, tag.Digest, got.Digest())
			}
		}
		fuzzCheckTree(t, s, m)
		again, err := migrate.ImportOCILayout(context.Background(), r, src, migrate.ImportOptions{Workers: 1})
		require.NoError(t, err, "ImportOCILayout(%q) the second time", index)
		assert.Equal(t, res.Tags, again.Tags, "tags of the second import")
		assert.Zero(t, again.Stats.Blobs, "blobs copied by the second import")
	})
}

// fuzzArchive is a docker save archive holding img's config as
// config.json, its (gzipped) layer as l/layer.tar, and manifest.json.
func fuzzArchive(tb testing.TB, img fuzzImage, manifestJSON []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", img.config}, {"l/layer.tar", img.layer.Compressed}, {"manifest.json", manifestJSON}} {
		require.NoError(tb, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(f.data)
		require.NoError(tb, err)
	}
	require.NoError(tb, tw.Close())
	return buf.Bytes()
}

// FuzzImportDockerArchive: migrate.ImportDockerArchive never panics on
// any manifest.json (in an archive holding one real image's files), fails
// only with the causes it documents, and leaves a tree with no damage.
func FuzzImportDockerArchive(f *testing.F) {
	img := newFuzzImage(f)
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["fuzz:v1"],"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["other/image:v1","fuzz:latest"],"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"config.json","RepoTags":null,"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../config.json","RepoTags":["fuzz:x"],"Layers":["/l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["fuzz:a"],"Layers":["l/layer.tar","l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["fuzz:..","fuzz:a/b"],"Layers":[]}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, manifestJSON []byte) {
		archive := fuzzArchive(t, img, manifestJSON)
		m := regstore.NewMemFS()
		s, err := regstore.Open(m)
		require.NoError(t, err)
		r, err := s.Repository("fuzz")
		require.NoError(t, err)
		res, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(archive), migrate.ImportOptions{Workers: 1})
		if err != nil {
			assert.True(t, fuzzWrapsDocumented(err), "ImportDockerArchive(manifest.json %q) = %v: no documented cause", manifestJSON, err)
			fuzzCheckTree(t, s, m)
			return
		}
		for _, tag := range res.Tags {
			assert.NoError(t, regstore.ValidateTag(tag.Tag), "ImportDockerArchive(%q) set tag %q", manifestJSON, tag.Tag)
			tg, err := r.Tag(tag.Tag)
			require.NoError(t, err)
			got, err := tg.Resolve()
			if assert.NoError(t, err, "Resolve(%q) after the import", tag.Tag) {
				assert.Equal(t, tag.Digest, got.Digest())
			}
		}
		fuzzCheckTree(t, s, m)
	})
}

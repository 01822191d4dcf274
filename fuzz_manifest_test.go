package regstore_test

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
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fuzzHex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // sha256("hello")

// FuzzParseManifest: ParseManifest never panics; what it refuses is an error
// wrapping ErrManifestInvalid; what it accepts keeps its bytes verbatim,
// is described by the sha256 of those bytes, and parses again to the same
// media type, digest and references.
func FuzzParseManifest(f *testing.F) {
	d := "sha256:" + fuzzHex
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":5},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d + `","size":5}]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d + `","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":7},"artifactType":"application/x"}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":7,"platform":{"architecture":"amd64","os":"linux"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + d + `","size":5},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"` + d + `","size":5,"urls":["https://example.com/l"]}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[{"blobSum":"` + d + `"},{"blobSum":"` + d + `"}],"signatures":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:../../x"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := regstore.ParseManifest(raw)
		if err != nil {
			assert.ErrorIs(t, err, regstore.ErrManifestInvalid, "ParseManifest(%q)", raw)
			assert.Nil(t, m, "ParseManifest(%q)", raw)
			return
		}
		assert.Equal(t, raw, m.Bytes(), "ParseManifest(%q).Bytes()", raw)
		assert.Equal(t, digest.FromBytes(raw), m.Digest(), "ParseManifest(%q).Digest()", raw)
		assert.Equal(t, int64(len(raw)), m.Size(), "ParseManifest(%q).Size()", raw)
		desc := m.Descriptor()
		assert.Equal(t, m.Digest(), desc.Digest)
		assert.Equal(t, m.MediaType(), desc.MediaType)
		assert.NotEmpty(t, m.MediaType(), "ParseManifest(%q).MediaType()", raw)
		refs := slices.Collect(m.References())
		for _, r := range refs {
			// Whatever a manifest references may become a path: it must
			// have been validated.
			assert.NoError(t, regstore.ValidateDigest(r.Digest), "ParseManifest(%q) reference %q", raw, r.Digest)
		}
		if m.IsIndex() {
			assert.Empty(t, m.Layers(), "index %q has layers", raw)
		}
		again, err := regstore.ParseManifest(slices.Clone(raw))
		require.NoError(t, err, "ParseManifest(%q) the second time", raw)
		assert.Equal(t, m.MediaType(), again.MediaType())
		assert.Equal(t, m.Digest(), again.Digest())
		assert.Equal(t, refs, slices.Collect(again.References()))
	})
}

// TestParseManifestSchema1Config: found by FuzzParseManifest (seed
// testdata/fuzz/FuzzParseManifest/bbc5fc8a98843a3b). A schema1 manifest
// (schemaVersion 1, so no media type check) with a "config" field, in any
// letter case since encoding/json matches keys case-insensitively, parses,
// and its Config() and References() yield that config's digest unvalidated:
// "" here, or "sha256:../x". manifestContent.validate checks only fsLayers
// for schema1. Nothing in regstore panics or escapes (every path builder
// validates again), but Check reports a reference-missing with an empty
// digest, Copy fails on it, and a caller that builds a Layout path from a
// reference, as the Layout doc allows for digests ParseManifest returned
// valid, panics in digest.Digest.Encoded.
//
// Proposed fix (manifest.go): Config returns false for schema1 manifests
// (they have no config; Layers already reads fsLayers), or validate refuses
// a schema1 manifest whose config, layers or manifests fields are set.
func TestParseManifestSchema1Config(t *testing.T) {
	for _, raw := range []string{
		`{"sChemAVersion":1,"Config":{"000000":"00000000"}}`,
		`{"schemaVersion":1,"config":{"digest":"sha256:../../x"}}`,
	} {
		m, err := regstore.ParseManifest([]byte(raw))
		if err != nil {
			assert.ErrorIs(t, err, regstore.ErrManifestInvalid, "ParseManifest(%s)", raw)
			continue
		}
		for r := range m.References() {
			assert.NoError(t, regstore.ValidateDigest(r.Digest), "ParseManifest(%s) reference %q", raw, r.Digest)
		}
	}
}

// FuzzValidate: the validators never panic, refuse with their sentinels
// (which match fs.ErrInvalid), and agree with the entry points that take
// names, tags and digests; what they accept builds paths that stay in
// their directory, and a digest round-trips through its blob path.
func FuzzValidate(f *testing.F) {
	f.Add("team/app", "latest", "sha256:"+fuzzHex)
	f.Add("a/../b", "..", "sha256:../../"+fuzzHex[:58])
	f.Add("a//b", "a/b", "sha256:"+fuzzHex+"\x00")
	f.Add("_layers", "-x", "SHA256:"+fuzzHex)
	f.Add("a\x00b", "t\x00", "sha512:"+strings.Repeat("ab", 64))
	f.Add("a.b-c__d/e", "v1.0_rc-1", "md5:5d41402abc4b2a76b9719d911017c592")
	f.Fuzz(func(t *testing.T, name, tag, ds string) {
		s, err := regstore.Open(regstore.NewMemFS())
		require.NoError(t, err)
		l := s.Layout()
		under := func(p, dir string) {
			t.Helper()
			assert.True(t, fs.ValidPath(p), "fs.ValidPath(%q)", p)
			assert.True(t, strings.HasPrefix(p, dir+"/"), "%q is not below %q", p, dir)
			assert.False(t, slices.Contains(strings.Split(p, "/"), ".."), "%q has a .. element", p)
			assert.NotContains(t, p, "\x00", "%q has a NUL", p)
		}

		r, rerr := s.Repository(name)
		if err := regstore.ValidateName(name); err != nil {
			assert.ErrorIs(t, err, regstore.ErrInvalidName, "ValidateName(%q)", name)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateName(%q)", name)
			assert.ErrorIs(t, rerr, regstore.ErrInvalidName, "Repository(%q)", name)
			r, rerr = s.Repository("a")
			require.NoError(t, rerr)
		} else {
			require.NoError(t, rerr, "Repository(%q) of a valid name", name)
			assert.Equal(t, name, r.Name())
			under(l.Repository(name), l.Repositories())
			under(l.Layers(name), l.Repository(name))
			under(l.Uploads(name), l.Repository(name))
		}

		tg, terr := r.Tag(tag)
		if err := regstore.ValidateTag(tag); err != nil {
			assert.ErrorIs(t, err, regstore.ErrInvalidTag, "ValidateTag(%q)", tag)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateTag(%q)", tag)
			assert.ErrorIs(t, terr, regstore.ErrInvalidTag, "Tag(%q)", tag)
		} else {
			require.NoError(t, terr, "Tag(%q) of a valid tag", tag)
			assert.Equal(t, tag, tg.Name())
			under(l.TagCurrent(r.Name(), tag), l.Tags(r.Name()))
			under(l.TagIndex(r.Name(), tag), l.Tag(r.Name(), tag))
			_, err := tg.Resolve()
			assert.ErrorIs(t, err, fs.ErrNotExist, "Resolve(%q) in an empty store", tag)
		}

		d := digest.Digest(ds)
		_, berr := s.Blob(d)
		_, rberr := r.Blob(d)
		if err := regstore.ValidateDigest(d); err != nil {
			assert.ErrorIs(t, err, regstore.ErrInvalidDigest, "ValidateDigest(%q)", ds)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateDigest(%q)", ds)
			assert.ErrorIs(t, berr, regstore.ErrInvalidDigest, "Store.Blob(%q)", ds)
			assert.ErrorIs(t, rberr, regstore.ErrInvalidDigest, "Repository.Blob(%q)", ds)
			_, err := regstore.ParseLink([]byte(ds))
			assert.ErrorIs(t, err, regstore.ErrCorruptLink, "ParseLink(%q) of an invalid digest", ds)
			return
		}
		assert.ErrorIs(t, berr, fs.ErrNotExist, "Store.Blob(%q) in an empty store", ds)
		assert.ErrorIs(t, rberr, fs.ErrNotExist, "Repository.Blob(%q) in an empty store", ds)
		under(l.BlobData(d), l.Blobs())
		under(l.LayerLink(r.Name(), d), l.Layers(r.Name()))
		under(l.RevisionLink(r.Name(), d), l.Revisions(r.Name()))
		back, ok := regstore.BlobDigest(strings.TrimPrefix(l.BlobData(d), l.Blobs()+"/"))
		assert.True(t, ok && back == d, "BlobDigest(BlobData(%q)) = %q, %v", ds, back, ok)
		p, err := regstore.ParseLink([]byte(ds))
		assert.NoError(t, err, "ParseLink(%q) of a valid digest", ds)
		assert.Equal(t, d, p)
	})
}

// fuzzImportErrors are the causes the import functions document.
var fuzzImportErrors = []error{regstore.ErrInvalidSource, fs.ErrNotExist, regstore.ErrDigestMismatch,
	regstore.ErrSizeMismatch, regstore.ErrManifestInvalid, regstore.ErrManifestBlobUnknown, regstore.ErrInvalidDigest}

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
	for p, err := range s.Check(context.Background(), regstore.CheckOptions{Workers: 1}) {
		require.NoError(t, err)
		switch p.Kind {
		case regstore.BlobOrphan, regstore.TempFileLeft:
		default:
			t.Errorf("Check after an import: %v", p)
		}
	}
}

// FuzzImportOCILayout: Repository.ImportOCILayout never panics on any
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
	f.Add(layout, entry(map[string]string{v1.AnnotationRefName: "registry.example/fuzz:v2", regstore.AnnotationContainerdImageName: "docker.io/library/fuzz:latest"}))
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
		res, err := r.ImportOCILayout(context.Background(), src, regstore.ImportOptions{Workers: 1})
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
		again, err := r.ImportOCILayout(context.Background(), src, regstore.ImportOptions{Workers: 1})
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

// FuzzImportDockerArchive: Repository.ImportDockerArchive never panics on
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
		res, err := r.ImportDockerArchive(context.Background(), bytes.NewReader(archive), regstore.ImportOptions{Workers: 1})
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

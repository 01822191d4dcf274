package migrate_test

// Traversal through the API's entry points, beyond traversal_test.go (which
// covers hostile digests in Store.Blob/PutBlob, layout roots, backend paths
// and symbolic links at the backend level): hostile repository names and
// tags, hostile import sources (index.json digests and ref names, docker
// archive member names, tar symbolic links), and trees written by someone
// else with symbolic links out of the root, read through Walk, Check,
// Repositories, Copy and ImportOCILayout.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

var (
	travNames = []string{"", ".", "..", "../x", "a/..", "a/../b", "a/../../b", "/a", "a/", "a//b", "a/./b",
		"a\x00b", "a\\b", "_uploads", "a/_manifests", "A", "a/../../../../etc"}
	travTags = []string{"", ".", "..", "../x", "a/b", "a/../b", "/a", "a\x00", ".a", "-a", "a\\b", strings.Repeat("a", 129)}
)

// TestTraversalNamesAndTags: Repository and Tag refuse every hostile name
// and tag with their sentinels, and nothing is read or written.
func TestTraversalNamesAndTags(t *testing.T) {
	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s := pbStore(t, w)
		pbSeed(t, s)
		check := travUnchanged(t, w)
		for _, name := range travNames {
			r, err := s.Repository(name)
			assert.ErrorIs(t, err, regstore.ErrInvalidName, "Repository(%q)", name)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Repository(%q)", name)
			assert.Nil(t, r, "Repository(%q)", name)
			assert.ErrorIs(t, s.DeleteRepository(name), regstore.ErrInvalidName, "DeleteRepository(%q)", name)
			assert.ErrorIs(t, s.MoveRepository("a", name), fs.ErrInvalid, "MoveRepository(a, %q)", name)
		}
		r, err := s.Repository("a")
		require.NoError(t, err)
		for _, tag := range travTags {
			tg, err := r.Tag(tag)
			assert.ErrorIs(t, err, regstore.ErrInvalidTag, "Tag(%q)", tag)
			assert.Nil(t, tg, "Tag(%q)", tag)
		}
		for _, d := range travDigests {
			_, err := r.Blob(digest.Digest(d))
			assert.ErrorIs(t, err, fs.ErrInvalid, "Repository.Blob(%q)", d)
			_, err = r.Manifest(digest.Digest(d))
			assert.ErrorIs(t, err, fs.ErrInvalid, "Repository.Manifest(%q)", d)
			_, err = r.LinkBlob(digest.Digest(d))
			assert.ErrorIs(t, err, fs.ErrInvalid, "Repository.LinkBlob(%q)", d)
		}
		check("hostile names, tags and digests")
	})
}

// travImage is one real image, pushed into a scratch store.
func travImage(t *testing.T) fuzzImage { return newFuzzImage(t) }

// travTarEntry is one member of a hostile archive.
type travTarEntry struct {
	name, link string
	data       []byte
	typ        byte
}

func travTar(t *testing.T, entries ...travTarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write(e.data)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// TestTraversalImportSources: import sources whose index.json, manifest.json
// or tar members name paths outside (.., absolute paths, symbolic links out
// of the archive) write nothing outside the store's root, set no tag that
// is not a valid tag, and read nothing from outside.
func TestTraversalImportSources(t *testing.T) {
	img := travImage(t)
	desc := img.manifest.Descriptor()
	secret := []byte("secret content outside the root")

	layout := func(index v1.Index) fs.FS {
		raw, err := json.Marshal(index)
		require.NoError(t, err)
		src := mgMapFS{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": raw,
			"blobs/sha256/" + desc.Digest.Encoded(): img.manifest.Bytes()}
		for d, b := range img.blobs {
			src["blobs/sha256/"+d.Encoded()] = b
		}
		return src.fs()
	}
	withRef := func(ref string) v1.Index {
		d := desc
		d.Annotations = map[string]string{v1.AnnotationRefName: ref}
		return v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []v1.Descriptor{d}}
	}
	hostileDigest := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []v1.Descriptor{{
		MediaType: v1.MediaTypeImageManifest, Digest: "sha256:../../../../../../etc/passwd", Size: 1}}}

	archive := func(manifestJSON string, extra ...travTarEntry) []byte {
		entries := append([]travTarEntry{
			{name: "config.json", data: img.config, typ: tar.TypeReg},
			{name: "l/layer.tar", data: img.layer.Compressed, typ: tar.TypeReg},
			{name: "manifest.json", data: []byte(manifestJSON), typ: tar.TypeReg},
		}, extra...)
		return travTar(t, entries...)
	}

	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s := pbStore(t, w)
		r, err := s.Repository("imp")
		require.NoError(t, err)
		var parent string
		var parentBefore []string
		if d, ok := w.(*regstore.Dir); ok {
			parent = filepath.Dir(d.Name())
			require.NoError(t, os.WriteFile(filepath.Join(parent, "passwd"), secret, 0o666))
			parentBefore = travOSListing(t, parent)
		}
		ctx := context.Background()
		for _, ref := range []string{"../../x", "a/../../b", "/etc/passwd", "..", "imp:../x", "registry.example/../imp:v1"} {
			res, err := migrate.ImportOCILayout(ctx, r, layout(withRef(ref)), migrate.ImportOptions{Workers: 1})
			if err == nil {
				for _, tag := range res.Tags {
					assert.NoError(t, regstore.ValidateTag(tag.Tag), "ImportOCILayout(ref %q) set tag %q", ref, tag.Tag)
				}
			}
		}
		_, err = migrate.ImportOCILayout(ctx, r, layout(hostileDigest), migrate.ImportOptions{Workers: 1})
		assert.ErrorIs(t, err, fs.ErrInvalid, "ImportOCILayout(digest sha256:../..)")

		for _, a := range []struct {
			name string
			tar  []byte
		}{
			{"config outside", archive(`[{"Config":"../../../passwd","RepoTags":["imp:a"],"Layers":["l/layer.tar"]}]`)},
			{"absolute layer", archive(`[{"Config":"config.json","RepoTags":["imp:b"],"Layers":["/passwd"]}]`)},
			{"member named ..", archive(`[{"Config":"config.json","RepoTags":["imp:c"],"Layers":["../passwd"]}]`,
				travTarEntry{name: "../passwd", data: secret, typ: tar.TypeReg})},
			{"symlink out", archive(`[{"Config":"config.json","RepoTags":["imp:d"],"Layers":["evil/layer.tar"]}]`,
				travTarEntry{name: "evil/layer.tar", link: "../../../../../passwd", typ: tar.TypeSymlink})},
			{"absolute symlink", archive(`[{"Config":"config.json","RepoTags":["imp:e"],"Layers":["evil/layer.tar"]}]`,
				travTarEntry{name: "evil/layer.tar", link: "/etc/passwd", typ: tar.TypeSymlink})},
			{"hard link out", archive(`[{"Config":"config.json","RepoTags":["imp:f"],"Layers":["evil/layer.tar"]}]`,
				travTarEntry{name: "evil/layer.tar", link: "../passwd", typ: tar.TypeLink})},
			{"tag with ..", archive(`[{"Config":"config.json","RepoTags":["imp:..","imp:../../x"],"Layers":["l/layer.tar"]}]`)},
		} {
			res, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(a.tar), migrate.ImportOptions{Workers: 1})
			if err == nil {
				for _, tag := range res.Tags {
					assert.NoError(t, regstore.ValidateTag(tag.Tag), "ImportDockerArchive(%s) set tag %q", a.name, tag.Tag)
				}
			}
		}
		if parent != "" {
			assert.Equal(t, parentBefore, travOSListing(t, parent), "outside the root after hostile imports")
		}
		// Nothing from outside became blob data.
		_, err = s.Blob(digest.FromBytes(secret))
		assert.ErrorIs(t, err, fs.ErrNotExist, "the secret became a blob")
		for _, p := range runCheck(t, s, false) {
			switch p.Kind {
			case check.BlobOrphan, check.TempFileLeft:
			default:
				t.Errorf("Check after hostile imports: %v", p)
			}
		}
	})
}

// mgMapFS is a tiny in-memory fs.FS of whole files.
type mgMapFS map[string][]byte

func (m mgMapFS) fs() fs.FS {
	mem := regstore.NewMemFS()
	for name, b := range m {
		fw, err := mem.Create(name)
		if err != nil {
			panic(err)
		}
		if _, err := fw.Write(b); err != nil {
			panic(err)
		}
		if err := fw.Commit(); err != nil {
			panic(err)
		}
	}
	return mem
}

// TestTraversalSymlinkedTree: a registry tree written by someone else
// whose repository directory, link file and blob directory are symbolic
// links to a valid tree outside the root. Walk, Check, Repositories,
// Resolve, Copy and the OCI layout import do not read through them (the
// content outside never shows up) and write nothing outside.
func TestTraversalSymlinkedTree(t *testing.T) {
	root, outside, _ := travSymlinkFixture(t)
	layoutDir := t.TempDir() // an OCI layout, filled below

	// A valid registry tree outside: repository evil, tag latest.
	m := regstore.NewMemFS()
	ms := pbStore(t, m)
	evil, err := ms.Repository("evil")
	require.NoError(t, err)
	secretImg := regstoretest.Push(t, evil, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.NewLayer(map[string]string{"secret": "s3cr3t"})}}, "latest")
	require.NoError(t, regstoretest.WriteTree(m, outside))
	v2out := filepath.Join(outside, filepath.FromSlash(regstore.DefaultLayoutRoot))

	// Inside: a good repository, and symbolic links out.
	good := regstore.NewMemFS()
	gs := pbStore(t, good)
	gr, err := gs.Repository("good")
	require.NoError(t, err)
	regstoretest.Push(t, gr, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.NewLayer(map[string]string{"good": "1"})}}, "v1")
	require.NoError(t, regstoretest.WriteTree(good, root))
	v2 := filepath.Join(root, filepath.FromSlash(regstore.DefaultLayoutRoot))
	require.NoError(t, os.Symlink(filepath.Join(v2out, "repositories", "evil"), filepath.Join(v2, "repositories", "evil")))
	cfg, _ := secretImg.Config()
	hex := secretImg.Digest().Encoded()
	require.NoError(t, os.MkdirAll(filepath.Join(v2, "blobs", "sha256", hex[:2]), 0o777))
	require.NoError(t, os.Symlink(filepath.Join(v2out, "blobs", "sha256", hex[:2], hex), filepath.Join(v2, "blobs", "sha256", hex[:2], hex)))
	// good links the secret manifest's config through a symlinked link file.
	linkDir := filepath.Join(v2, "repositories", "good", "_layers", "sha256", cfg.Digest.Encoded())
	require.NoError(t, os.MkdirAll(linkDir, 0o777))
	require.NoError(t, os.Symlink(filepath.Join(v2out, "repositories", "evil", "_layers", "sha256", cfg.Digest.Encoded(), "link"), filepath.Join(linkDir, "link")))

	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	s := pbStore(t, d)
	ctx := context.Background()
	outsideBefore := travOSListing(t, outside)

	for r, err := range s.Repositories() {
		if err != nil {
			continue
		}
		assert.NotEqual(t, "evil", r.Name(), "Repositories lists the symlinked repository")
	}
	if r, err := s.Repository("evil"); assert.NoError(t, err) {
		if tg, err := r.Tag("latest"); assert.NoError(t, err) {
			_, err := tg.Resolve()
			assert.Error(t, err, "evil:latest resolves through a symlink out of the root")
		}
		_, err := r.Manifest(secretImg.Digest())
		assert.Error(t, err, "the secret manifest is read through a symlink")
	}
	_, err = s.Blob(secretImg.Digest())
	assert.Error(t, err, "the secret manifest's data is found through a symlinked blob directory")
	if r, err := s.Repository("good"); assert.NoError(t, err) {
		_, err := r.Blob(cfg.Digest)
		assert.Error(t, err, "a symlinked link file is followed out of the root")
	}

	for e, err := range s.Walk() {
		if err != nil {
			continue
		}
		assert.False(t, strings.Contains(e.Path, "/evil/"), "Walk enters the symlinked repository: %s", e.Path)
	}
	for p, err := range check.Problems(ctx, s, check.Options{Workers: 1}) {
		if err != nil {
			continue
		}
		assert.False(t, strings.Contains(p.Path, "/evil/"), "Check reads inside the symlinked repository: %v", p)
	}

	// Copy everything out of the tree, and import an OCI layout whose blob
	// files are symbolic links out of its root.
	dst := pbStore(t, regstore.NewMemFS())
	_, _ = migrate.Copy(ctx, dst, s, migrate.CopyOptions{Workers: 1})
	_, err = dst.Blob(secretImg.Digest())
	assert.ErrorIs(t, err, fs.ErrNotExist, "Copy copied the secret manifest")
	_, err = dst.Blob(cfg.Digest)
	assert.ErrorIs(t, err, fs.ErrNotExist, "Copy copied the secret config")

	require.NoError(t, os.WriteFile(filepath.Join(layoutDir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o666))
	index, err := json.Marshal(v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []v1.Descriptor{secretImg.Descriptor()}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(layoutDir, "index.json"), index, 0o666))
	require.NoError(t, os.MkdirAll(filepath.Join(layoutDir, "blobs", "sha256"), 0o777))
	require.NoError(t, os.Symlink(filepath.Join(v2out, "blobs", "sha256", hex[:2], hex, "data"), filepath.Join(layoutDir, "blobs", "sha256", hex)))
	src, err := regstore.OpenDir(layoutDir)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	ir, err := dst.Repository("imp")
	require.NoError(t, err)
	_, err = migrate.ImportOCILayout(ctx, ir, src, migrate.ImportOptions{Workers: 1})
	assert.Error(t, err, "ImportOCILayout read a manifest through a symlink out of the source's root")
	_, err = dst.Blob(secretImg.Digest())
	assert.ErrorIs(t, err, fs.ErrNotExist, "ImportOCILayout imported the secret manifest")

	assert.Equal(t, outsideBefore, travOSListing(t, outside), "outside the root after reading the tree")
}

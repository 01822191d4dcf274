package regstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Helpers of the handle tests (repository_test.go, tag_test.go,
// manifest_test.go, walk_test.go). Their names start with "h" so that they
// do not clash with the helpers of other test files.

// hBackends are the writable backends the handle tests run on.
var hBackends = []struct {
	name string
	new  func(*testing.T) regstore.WriteFS
}{{"MemFS", newMem}, {"Dir", newDir}}

// hEach runs fn on a fresh, empty store on each backend.
func hEach(t *testing.T, fn func(t *testing.T, h *hTree)) {
	t.Helper()
	for _, bk := range hBackends {
		t.Run(bk.name, func(t *testing.T) { fn(t, newHTree(t, bk.new(t))) })
	}
}

// hTree builds registry trees by hand: every file is written straight
// through the backend, at paths from the store's Layout, so that the tests
// do not depend on the write side of the code under test.
type hTree struct {
	t testing.TB
	w regstore.WriteFS
	s *regstore.Store
	l regstore.Layout
}

func newHTree(t testing.TB, w regstore.WriteFS) *hTree {
	t.Helper()
	s, err := regstore.Open(w)
	require.NoError(t, err, "Open")
	return &hTree{t: t, w: w, s: s, l: s.Layout()}
}

// put writes a file.
func (h *hTree) put(p, content string) {
	h.t.Helper()
	backendtest.Put(h.t, h.w, p, content)
}

// dir makes an empty directory (a backend has no mkdir: write a file in it
// and remove the file).
func (h *hTree) dir(p string) {
	h.t.Helper()
	h.put(p+"/.keep", "")
	require.NoError(h.t, h.w.Remove(p+"/.keep"), "Remove(%s/.keep)", p)
}

// remove deletes one file.
func (h *hTree) remove(p string) {
	h.t.Helper()
	require.NoError(h.t, h.w.Remove(p), "Remove(%s)", p)
}

// data writes blob data under its sha256 digest.
func (h *hTree) data(content string) digest.Digest {
	h.t.Helper()
	d := digest.FromString(content)
	h.put(h.l.BlobData(d), content)
	return d
}

// layer writes blob data and links it in repo's _layers.
func (h *hTree) layer(repo, content string) digest.Digest {
	h.t.Helper()
	d := h.data(content)
	h.put(h.l.LayerLink(repo, d), d.String())
	return d
}

// tag writes the index entry and current link of repo:tag for d.
func (h *hTree) tag(repo, tag string, d digest.Digest) {
	h.t.Helper()
	h.put(h.l.TagIndexLink(repo, tag, d), d.String())
	h.put(h.l.TagCurrent(repo, tag), d.String())
}

// manifest writes manifest data, its revision link and tags.
func (h *hTree) manifest(repo, raw string, tags ...string) digest.Digest {
	h.t.Helper()
	d := h.data(raw)
	h.put(h.l.RevisionLink(repo, d), d.String())
	for _, tg := range tags {
		h.tag(repo, tg, d)
	}
	return d
}

// image writes an OCI image whose config and layers are linked in repo.
func (h *hTree) image(repo, config string, layers []string, tags ...string) digest.Digest {
	h.t.Helper()
	h.layer(repo, config)
	for _, l := range layers {
		h.layer(repo, l)
	}
	return h.manifest(repo, hImage(regstore.MediaTypeOCIManifest, config, layers...), tags...)
}

func (h *hTree) repo(name string) *regstore.Repository {
	h.t.Helper()
	r, err := h.s.Repository(name)
	require.NoError(h.t, err, "Repository(%q)", name)
	return r
}

func (h *hTree) tagOf(repo, tag string) *regstore.Tag {
	h.t.Helper()
	tg, err := h.repo(repo).Tag(tag)
	require.NoError(h.t, err, "Tag(%q)", tag)
	return tg
}

// listing is every directory ("p/") and file ("p=content") of the backend.
func (h *hTree) listing() []string {
	h.t.Helper()
	return backendtest.Listing(h.t, h.w, ".")
}

// hDiff returns what is in after and not in before, and the reverse.
func hDiff(before, after []string) (added, removed []string) {
	in := func(xs []string, x string) bool { return slices.Contains(xs, x) }
	for _, x := range after {
		if !in(before, x) {
			added = append(added, x)
		}
	}
	for _, x := range before {
		if !in(after, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

// hWithDirs returns files plus every parent directory of theirs that is not
// in existing, as Listing entries, sorted as a walk lists them.
func hWithDirs(existing []string, files ...string) []string {
	set := map[string]bool{}
	for _, f := range files {
		set[f] = true
		name, _, _ := strings.Cut(f, "=")
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if !slices.Contains(existing, dir+"/") {
				set[dir+"/"] = true
			}
		}
	}
	return hSortListing(slices.Collect(maps.Keys(set)))
}

// hSortListing sorts Listing entries in walk order.
func hSortListing(xs []string) []string {
	key := func(s string) string {
		name, _, _ := strings.Cut(s, "=")
		return strings.TrimSuffix(name, "/")
	}
	slices.SortFunc(xs, func(a, b string) int {
		// Walk order compares component by component.
		return slices.Compare(strings.Split(key(a), "/"), strings.Split(key(b), "/"))
	})
	return xs
}

// hDesc is the JSON of a descriptor.
type hDesc struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int           `json:"size"`
	URLs      []string      `json:"urls,omitempty"`
}

func hDescOf(mediaType, content string) hDesc {
	return hDesc{MediaType: mediaType, Digest: digest.FromString(content), Size: len(content)}
}

// hImage is the JSON of an image manifest whose config and layers have the
// given contents; mediaType "" leaves the field out.
func hImage(mediaType, config string, layers ...string) string {
	ls := []hDesc{}
	for _, l := range layers {
		ls = append(ls, hDescOf("application/vnd.oci.image.layer.v1.tar+gzip", l))
	}
	return hJSON(mediaType, map[string]any{
		"config": hDescOf("application/vnd.oci.image.config.v1+json", config),
		"layers": ls,
	})
}

// hIndex is the JSON of an index of the given child manifests; mediaType ""
// leaves the field out.
func hIndex(mediaType string, children ...string) string {
	ms := []hDesc{}
	for _, c := range children {
		ms = append(ms, hDescOf(regstore.MediaTypeOCIManifest, c))
	}
	return hJSON(mediaType, map[string]any{"manifests": ms})
}

func hJSON(mediaType string, fields map[string]any) string {
	m := map[string]any{"schemaVersion": 2}
	if mediaType != "" {
		m["mediaType"] = mediaType
	}
	maps.Copy(m, fields)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hErrClasses are the error classes a result is checked against: an error
// must match the class it is expected to match, and no other one.
var hErrClasses = []error{
	fs.ErrNotExist, fs.ErrInvalid, errors.ErrUnsupported,
	regstore.ErrCorruptLink, regstore.ErrDigestMismatch, regstore.ErrManifestInvalid,
	regstore.ErrManifestTooLarge, regstore.ErrManifestBlobUnknown,
}

// hCheckErr checks that err is nil when want is, and otherwise that it is
// an *regstore.Error that matches want and none of the other classes.
func hCheckErr(t *testing.T, err, want error, msgAndArgs ...any) {
	t.Helper()
	if want == nil {
		assert.NoError(t, err, msgAndArgs...)
		return
	}
	if !assert.ErrorIs(t, err, want, msgAndArgs...) {
		return
	}
	for _, c := range hErrClasses {
		if !errors.Is(want, c) {
			assert.NotErrorIs(t, err, c, msgAndArgs...)
		}
	}
	var e *regstore.Error
	assert.ErrorAs(t, err, &e, msgAndArgs...)
}

// hSeq collects a sequence, stopping at the first error.
func hSeq[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// hNames collects the names of a sequence of handles.
func hNames[T interface{ Name() string }](seq func(func(T, error) bool)) ([]string, error) {
	xs, err := hSeq(seq)
	var out []string
	for _, x := range xs {
		out = append(out, x.Name())
	}
	return out, err
}

// hRecorder is a backend that records, in order, each file it publishes
// ("+path", on Commit or as a rename's target) and each path it removes
// ("-path").
type hRecorder struct {
	regstore.WriteFS
	mu  sync.Mutex
	ops []string
}

var (
	_ regstore.RenameFS    = (*hRecorder)(nil)
	_ regstore.RemoveAllFS = (*hRecorder)(nil)
)

func (r *hRecorder) add(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

func (r *hRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

func (r *hRecorder) Create(name string) (regstore.FileWriter, error) {
	fw, err := r.WriteFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &hRecWriter{FileWriter: fw, r: r, name: name}, nil
}

func (r *hRecorder) Remove(name string) error {
	err := r.WriteFS.Remove(name)
	if err == nil {
		r.add("-" + name)
	}
	return err
}

func (r *hRecorder) RemoveAll(name string) error {
	err := r.WriteFS.(regstore.RemoveAllFS).RemoveAll(name)
	if err == nil {
		r.add("-" + name)
	}
	return err
}

func (r *hRecorder) Rename(oldname, newname string) error {
	err := r.WriteFS.(regstore.RenameFS).Rename(oldname, newname)
	if err == nil {
		r.add("+" + newname)
	}
	return err
}

type hRecWriter struct {
	regstore.FileWriter
	r    *hRecorder
	name string
}

func (w *hRecWriter) Commit() error {
	err := w.FileWriter.Commit()
	if err == nil {
		w.r.add("+" + w.name)
	}
	return err
}

// Fixed contents, and so fixed digests, of the handle tests.
const (
	hConfig  = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	hLayerA  = "layer A"
	hLayerB  = "layer B"
	hForeign = "foreign layer"
)

// TestRepositoryReadRules checks every rule by which a repository holds a
// blob, a manifest or a tag, on trees written by hand, traps included.
func TestRepositoryReadRules(t *testing.T) {
	const repo = "team/app"
	img := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	imgD := digest.FromString(img)
	aD := digest.FromString(hLayerA)
	bD := digest.FromString(hLayerB)
	a512 := digest.SHA512.FromString(hLayerA)

	blob := func(d digest.Digest) func(*hTree) (any, error) {
		return func(h *hTree) (any, error) {
			b, err := h.repo(repo).Blob(d)
			if err != nil {
				return nil, err
			}
			return b.Digest(), nil
		}
	}
	manifest := func(d digest.Digest) func(*hTree) (any, error) {
		return func(h *hTree) (any, error) {
			m, err := h.repo(repo).Manifest(d)
			if err != nil {
				return nil, err
			}
			return m.Digest(), nil
		}
	}
	tagDigest := func(tag string) func(*hTree) (any, error) {
		return func(h *hTree) (any, error) {
			d, err := h.tagOf(repo, tag).Digest()
			if err != nil {
				return nil, err
			}
			return d, nil
		}
	}
	resolve := func(tag string) func(*hTree) (any, error) {
		return func(h *hTree) (any, error) {
			m, err := h.tagOf(repo, tag).Resolve()
			if err != nil {
				return nil, err
			}
			return m.Digest(), nil
		}
	}
	manifests := func(h *hTree) (any, error) { return hSeq(h.repo(repo).Manifests()) }
	layers := func(h *hTree) (any, error) { return hSeq(h.repo(repo).Layers()) }
	tags := func(h *hTree) (any, error) { return hNames(h.repo(repo).Tags()) }
	exists := func(h *hTree) (any, error) { return h.repo(repo).Exists() }
	repos := func(h *hTree) (any, error) { return hNames(h.s.Repositories()) }

	for _, c := range []struct {
		name    string
		build   func(h *hTree)
		query   func(h *hTree) (any, error)
		want    any
		wantErr error
	}{
		// Blobs: a _layers link that parses, and data.
		{"blob linked with data", func(h *hTree) { h.layer(repo, hLayerA) }, blob(aD), aD, nil},
		{"blob data without link", func(h *hTree) { h.data(hLayerA) }, blob(aD), nil, fs.ErrNotExist},
		{"blob linked in another repository only", func(h *hTree) { h.layer("other", hLayerA) }, blob(aD), nil, fs.ErrNotExist},
		{"dangling layer link", func(h *hTree) { h.put(h.l.LayerLink(repo, aD), aD.String()) }, blob(aD), nil, fs.ErrNotExist},
		{"empty layer dir left by unlink", func(h *hTree) { h.data(hLayerA); h.dir(path.Dir(h.l.LayerLink(repo, aD))) }, blob(aD), nil, fs.ErrNotExist},
		{"sha512 link naming the sha256 blob", func(h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, a512), aD.String())
		}, blob(a512), aD, nil},
		{"sha512 link only: the sha256 digest is not linked", func(h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, a512), aD.String())
		}, blob(aD), nil, fs.ErrNotExist},
		{"link content wins over link path", func(h *hTree) {
			h.data(hLayerA) // data for the path's digest exists, the named one does not
			h.put(h.l.LayerLink(repo, aD), bD.String())
		}, blob(aD), nil, fs.ErrNotExist},
		{"link content names another existing blob", func(h *hTree) {
			h.data(hLayerB)
			h.put(h.l.LayerLink(repo, aD), bD.String())
		}, blob(aD), bD, nil},
		{"layer link with trailing newline", func(h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, aD), aD.String()+"\n")
		}, blob(aD), nil, regstore.ErrCorruptLink},
		{"empty layer link (interrupted write)", func(h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, aD), "")
		}, blob(aD), nil, regstore.ErrCorruptLink},
		{"layer link with upper-case hex", func(h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, aD), "sha256:"+strings.ToUpper(aD.Encoded()))
		}, blob(aD), nil, regstore.ErrCorruptLink},
		{"layer link that is a directory", func(h *hTree) {
			h.data(hLayerA)
			h.dir(h.l.LayerLink(repo, aD))
		}, blob(aD), nil, regstore.ErrCorruptLink},
		{"blob data that is a directory", func(h *hTree) {
			h.dir(h.l.BlobData(aD))
			h.put(h.l.LayerLink(repo, aD), aD.String())
		}, blob(aD), nil, fs.ErrNotExist},

		// Manifests: a revision link that parses, and data.
		{"manifest with revision link and data", func(h *hTree) { h.image(repo, hConfig, []string{hLayerA}) }, manifest(imgD), imgD, nil},
		{"manifest data without revision link", func(h *hTree) { h.data(img); h.dir(h.l.Manifests(repo)) }, manifest(imgD), nil, fs.ErrNotExist},
		{"dangling revision link", func(h *hTree) { h.put(h.l.RevisionLink(repo, imgD), imgD.String()) }, manifest(imgD), nil, fs.ErrNotExist},
		{"revision link with trailing newline", func(h *hTree) {
			h.data(img)
			h.put(h.l.RevisionLink(repo, imgD), imgD.String()+"\n")
		}, manifest(imgD), nil, regstore.ErrCorruptLink},
		{"manifest linked only in _layers (v2.1.0 bug)", func(h *hTree) {
			h.layer(repo, img)
			h.dir(h.l.Revisions(repo))
		}, manifest(imgD), nil, fs.ErrNotExist},
		{"manifest linked only in _layers is a blob", func(h *hTree) {
			h.layer(repo, img)
			h.dir(h.l.Revisions(repo))
		}, blob(imgD), imgD, nil},
		{"manifest data corrupted", func(h *hTree) {
			// Still valid JSON, but not the bytes the digest was taken of.
			h.put(h.l.BlobData(imgD), strings.Replace(img, `"schemaVersion":2`, `"schemaVersion": 2`, 1))
			h.put(h.l.RevisionLink(repo, imgD), imgD.String())
		}, manifest(imgD), nil, regstore.ErrDigestMismatch},
		{"manifest data truncated", func(h *hTree) {
			h.put(h.l.BlobData(imgD), img[:len(img)/2])
			h.put(h.l.RevisionLink(repo, imgD), imgD.String())
		}, manifest(imgD), nil, regstore.ErrDigestMismatch},

		// Tags: current link, then revision link, then data.
		{"tag resolves", func(h *hTree) { h.image(repo, hConfig, []string{hLayerA}, "v1") }, resolve("v1"), imgD, nil},
		{"tag current with trailing newline: Digest", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.put(h.l.TagCurrent(repo, "v1"), imgD.String()+"\n")
		}, tagDigest("v1"), nil, regstore.ErrCorruptLink},
		{"tag current with trailing newline: Resolve", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.put(h.l.TagCurrent(repo, "v1"), imgD.String()+"\n")
		}, resolve("v1"), nil, regstore.ErrCorruptLink},
		{"tag without current: listed", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.put(h.l.TagIndexLink(repo, "v1", imgD), imgD.String())
		}, tags, []string{"v1"}, nil},
		{"tag without current: Resolve", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.put(h.l.TagIndexLink(repo, "v1", imgD), imgD.String())
		}, resolve("v1"), nil, fs.ErrNotExist},
		{"tag without current: Digest", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.dir(h.l.Tag(repo, "v1"))
		}, tagDigest("v1"), nil, fs.ErrNotExist},
		{"tag pointing at a deleted revision: Digest", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA}, "v1")
			h.remove(h.l.RevisionLink(repo, imgD))
		}, tagDigest("v1"), imgD, nil},
		{"tag pointing at a deleted revision: Resolve", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA}, "v1")
			h.remove(h.l.RevisionLink(repo, imgD))
		}, resolve("v1"), nil, fs.ErrNotExist},
		{"tag pointing at a revision whose data is gone", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA}, "v1")
			h.remove(h.l.BlobData(imgD))
		}, resolve("v1"), nil, fs.ErrNotExist},
		{"missing tag", func(h *hTree) { h.image(repo, hConfig, []string{hLayerA}, "v1") }, resolve("v2"), nil, fs.ErrNotExist},

		// Repositories: a directory holding _manifests.
		{"repository with _layers only: Exists", func(h *hTree) { h.layer(repo, hLayerA) }, exists, false, nil},
		{"repository with _layers only: not listed", func(h *hTree) {
			h.layer(repo, hLayerA)
			h.image("other", hConfig, nil)
		}, repos, []string{"other"}, nil},
		{"repository with empty _manifests: Exists", func(h *hTree) { h.dir(h.l.Manifests(repo)) }, exists, true, nil},
		{"repository with empty _manifests: listed", func(h *hTree) { h.dir(h.l.Manifests(repo)) }, repos, []string{repo}, nil},
		{"no repository", func(h *hTree) { h.image("other", hConfig, nil) }, exists, false, nil},

		// Enumeration.
		{"Manifests skips empty revision dirs and dangling links", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.dir(h.l.RevisionDir(repo, digest.FromString("deleted manifest")))
			h.put(h.l.RevisionLink(repo, digest.FromString("gc'd manifest")), digest.FromString("gc'd manifest").String())
			h.layer(repo, "in _layers only")
		}, manifests, []digest.Digest{imgD}, nil},
		{"Manifests yields a corrupt link's error", func(h *hTree) {
			h.image(repo, hConfig, []string{hLayerA})
			h.put(h.l.RevisionLink(repo, digest.FromString("x")), digest.FromString("x").String()+"\n")
		}, manifests, nil, regstore.ErrCorruptLink},
		{"Layers yields link digests, skipping dangling links and empty dirs", func(h *hTree) {
			h.layer(repo, hLayerB)
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, a512), aD.String())
			h.put(h.l.LayerLink(repo, digest.FromString("gone")), digest.FromString("gone").String())
			h.dir(path.Dir(h.l.LayerLink(repo, digest.FromString("unlinked"))))
		}, layers, []digest.Digest{bD, a512}, nil},
		{"Layers yields a corrupt link's error", func(h *hTree) {
			h.layer(repo, hLayerB)
			h.data(hLayerA)
			h.put(h.l.LayerLink(repo, aD), aD.String()+"\n")
		}, layers, nil, regstore.ErrCorruptLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				c.build(h)
				got, err := c.query(h)
				hCheckErr(t, err, c.wantErr, "%s", c.name)
				if c.wantErr == nil {
					assert.Equal(t, c.want, got, "%s", c.name)
				}
			})
		})
	}
}

// TestRepositoryHandles checks the handles' names and their validation.
func TestRepositoryHandles(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	for _, name := range []string{"", "A", "a//b", "_a", "a/_b", "localhost:5000/x", strings.Repeat("a", 256)} {
		_, err := s.Repository(name)
		hCheckErr(t, err, regstore.ErrInvalidName, "Repository(%q)", name)
	}
	r, err := s.Repository("team/app")
	require.NoError(t, err)
	assert.Equal(t, "team/app", r.Name())
	assert.Same(t, s, r.Store())
	for _, tag := range []string{"", ".x", "-x", "a/b", strings.Repeat("t", 129)} {
		_, err := r.Tag(tag)
		hCheckErr(t, err, regstore.ErrInvalidTag, "Tag(%q)", tag)
	}
	for _, d := range []digest.Digest{"", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", digest.Digest("SHA256:" + digest.FromString("x").Encoded())} {
		_, err := r.Blob(d)
		hCheckErr(t, err, regstore.ErrInvalidDigest, "Blob(%q)", d)
		_, err = r.Manifest(d)
		hCheckErr(t, err, regstore.ErrInvalidDigest, "Manifest(%q)", d)
	}
}

// TestPutManifestRefused checks that a push the registry would refuse
// writes nothing.
func TestPutManifestRefused(t *testing.T) {
	const repo = "team/app"
	good := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	for _, c := range []struct {
		name      string
		build     func(h *hTree) // besides the config and hLayerA linked in repo
		mediaType string
		raw       string
		tags      []string
		wantErr   error
	}{
		{"config not linked", func(h *hTree) { h.layer("other", "other config") },
			regstore.MediaTypeOCIManifest, hImage(regstore.MediaTypeOCIManifest, "other config", hLayerA), nil, regstore.ErrManifestBlobUnknown},
		{"layer linked in another repository only", func(h *hTree) { h.layer("other", hLayerB) },
			regstore.MediaTypeOCIManifest, hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA, hLayerB), nil, regstore.ErrManifestBlobUnknown},
		{"layer data in store but not linked", func(h *hTree) { h.data(hLayerB) },
			regstore.MediaTypeOCIManifest, hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerB), nil, regstore.ErrManifestBlobUnknown},
		{"layer link dangling", func(h *hTree) {
			d := digest.FromString(hLayerB)
			h.put(h.l.LayerLink(repo, d), d.String())
		}, regstore.MediaTypeOCIManifest, hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerB), []string{"v1"}, regstore.ErrManifestBlobUnknown},
		{"index child missing", func(h *hTree) { h.manifest(repo, good) },
			regstore.MediaTypeOCIIndex, hIndex(regstore.MediaTypeOCIIndex, good, hImage(regstore.MediaTypeOCIManifest, hConfig)), []string{"v1"}, regstore.ErrManifestBlobUnknown},
		{"index child in another repository only", func(h *hTree) { h.image("other", hConfig, []string{hLayerA}) },
			regstore.MediaTypeOCIIndex, hIndex(regstore.MediaTypeOCIIndex, good), nil, regstore.ErrManifestBlobUnknown},
		{"manifest list child missing", nil,
			regstore.MediaTypeDockerManifestList, hIndex(regstore.MediaTypeDockerManifestList, good), nil, regstore.ErrManifestBlobUnknown},
		{"pushed as OCI manifest, body has manifests", nil,
			regstore.MediaTypeOCIManifest, hIndex("", good), nil, regstore.ErrManifestInvalid},
		{"OCI manifest with mediaType and manifests", nil,
			regstore.MediaTypeOCIManifest, hJSON(regstore.MediaTypeOCIManifest, map[string]any{
				"config": hDescOf("application/vnd.oci.image.config.v1+json", hConfig), "layers": []hDesc{}, "manifests": []hDesc{},
			}), nil, regstore.ErrManifestInvalid},
		{"pushed as Docker manifest, body has no mediaType", nil,
			regstore.MediaTypeDockerManifest, hImage("", hConfig, hLayerA), nil, regstore.ErrManifestInvalid},
		{"pushed as Docker manifest list, body has no mediaType", func(h *hTree) { h.manifest(repo, good) },
			regstore.MediaTypeDockerManifestList, hIndex("", good), nil, regstore.ErrManifestInvalid},
		{"pushed as OCI index, body is a Docker manifest list", func(h *hTree) { h.manifest(repo, good) },
			regstore.MediaTypeOCIIndex, hIndex(regstore.MediaTypeDockerManifestList, good), nil, regstore.ErrManifestInvalid},
		{"unknown Content-Type", nil, "application/json", good, nil, regstore.ErrManifestInvalid},
		{"schema1", nil, "", hSchema1, nil, regstore.ErrManifestInvalid},
		{"schema1 pushed with its media type", nil, regstore.MediaTypeDockerSchema1Signed, hSchema1, []string{"latest"}, regstore.ErrManifestInvalid},
		{"schemaVersion 3", nil, "", `{"schemaVersion":3,"config":{}}`, nil, regstore.ErrManifestInvalid},
		{"not JSON", nil, regstore.MediaTypeOCIManifest, "{", nil, regstore.ErrManifestInvalid},
		{"too large", nil, regstore.MediaTypeOCIManifest, good + strings.Repeat(" ", regstore.MaxManifestSize), nil, regstore.ErrManifestTooLarge},
		{"invalid tag", nil, regstore.MediaTypeOCIManifest, good, []string{"v1", "-bad"}, regstore.ErrInvalidTag},
		{"invalid layer digest", nil, regstore.MediaTypeOCIManifest,
			strings.Replace(good, digest.FromString(hLayerA).String(), "sha256:../../x", 1), nil, regstore.ErrManifestInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				h.layer(repo, hConfig)
				h.layer(repo, hLayerA)
				if c.build != nil {
					c.build(h)
				}
				before := h.listing()
				_, err := h.repo(repo).PutManifest(c.mediaType, []byte(c.raw), c.tags...)
				require.Error(t, err, "PutManifest(%s)", c.name)
				assert.ErrorIs(t, err, c.wantErr, "PutManifest(%s)", c.name)
				var e *regstore.Error
				if assert.ErrorAs(t, err, &e, "PutManifest(%s)", c.name) {
					assert.Equal(t, repo, e.Repository, "PutManifest(%s): Error.Repository", c.name)
				}
				assert.Equal(t, before, h.listing(), "tree after refused PutManifest(%s)", c.name)
			})
		})
	}
}

// TestPutManifestAccepted checks pushes the registry accepts.
func TestPutManifestAccepted(t *testing.T) {
	const repo = "team/app"
	good := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	foreign := hJSON(regstore.MediaTypeDockerManifest, map[string]any{
		"config": hDescOf("application/vnd.docker.container.image.v1+json", hConfig),
		"layers": []hDesc{{MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
			Digest: digest.FromString(hForeign), Size: len(hForeign), URLs: []string{"https://example.com/layer"}}},
	})
	for _, c := range []struct {
		name, mediaType, raw, want string
	}{
		{"OCI manifest", regstore.MediaTypeOCIManifest, good, regstore.MediaTypeOCIManifest},
		{"OCI manifest, type detected", "", good, regstore.MediaTypeOCIManifest},
		{"OCI manifest without mediaType", regstore.MediaTypeOCIManifest, hImage("", hConfig, hLayerA), regstore.MediaTypeOCIManifest},
		{"Docker manifest", regstore.MediaTypeDockerManifest, hImage(regstore.MediaTypeDockerManifest, hConfig, hLayerA), regstore.MediaTypeDockerManifest},
		{"Docker manifest with a foreign layer (documented: URLs need no link)", regstore.MediaTypeDockerManifest, foreign, regstore.MediaTypeDockerManifest},
		{"OCI index", regstore.MediaTypeOCIIndex, hIndex(regstore.MediaTypeOCIIndex, good), regstore.MediaTypeOCIIndex},
		{"OCI index without mediaType", regstore.MediaTypeOCIIndex, hIndex("", good), regstore.MediaTypeOCIIndex},
		{"Docker manifest list", regstore.MediaTypeDockerManifestList, hIndex(regstore.MediaTypeDockerManifestList, good), regstore.MediaTypeDockerManifestList},
		{"empty index", regstore.MediaTypeOCIIndex, hIndex(regstore.MediaTypeOCIIndex), regstore.MediaTypeOCIIndex},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				h.manifest(repo, good)
				h.layer(repo, hConfig)
				h.layer(repo, hLayerA)
				m, err := h.repo(repo).PutManifest(c.mediaType, []byte(c.raw), "t")
				require.NoError(t, err, "PutManifest(%s)", c.name)
				assert.Equal(t, c.want, m.MediaType(), "PutManifest(%s).MediaType()", c.name)
				assert.Equal(t, digest.FromString(c.raw), m.Digest(), "PutManifest(%s).Digest()", c.name)
				got, err := h.tagOf(repo, "t").Resolve()
				require.NoError(t, err, "Resolve(t)")
				assert.Equal(t, c.raw, string(got.Bytes()), "Resolve(t).Bytes()")
				assert.Equal(t, c.want, got.MediaType(), "Resolve(t).MediaType()")
			})
		})
	}
}

// TestPutManifestWrites checks the exact files a push writes, their bytes
// and their order.
func TestPutManifestWrites(t *testing.T) {
	const repo = "team/app"
	for _, bk := range hBackends {
		t.Run(bk.name, func(t *testing.T) {
			rec := &hRecorder{WriteFS: bk.new(t)}
			h := newHTree(t, rec)
			h.layer(repo, hConfig)
			h.layer(repo, hLayerA)
			raw := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
			d := digest.FromString(raw)
			before := h.listing()
			rec.take()

			m, err := h.repo(repo).PutManifest(regstore.MediaTypeOCIManifest, []byte(raw), "v1", "latest")
			require.NoError(t, err, "PutManifest")
			assert.Equal(t, d, m.Digest(), "PutManifest().Digest()")
			assert.Equal(t, raw, string(m.Bytes()), "PutManifest().Bytes()")

			link := d.String()
			require.Len(t, link, 71, "a sha256 link is 71 bytes")
			data := h.l.BlobData(d)
			rev := h.l.RevisionLink(repo, d)
			wantFiles := []string{
				data + "=" + raw,
				rev + "=" + link,
				h.l.TagIndexLink(repo, "v1", d) + "=" + link,
				h.l.TagCurrent(repo, "v1") + "=" + link,
				h.l.TagIndexLink(repo, "latest", d) + "=" + link,
				h.l.TagCurrent(repo, "latest") + "=" + link,
			}
			added, removed := hDiff(before, h.listing())
			assert.Equal(t, hWithDirs(before, wantFiles...), hSortListing(added), "files and directories a push adds")
			assert.Empty(t, removed, "files a push removes")
			for _, p := range []string{rev, h.l.TagCurrent(repo, "v1"), h.l.TagIndexLink(repo, "latest", d)} {
				b, err := fs.ReadFile(h.w, p)
				require.NoError(t, err, "ReadFile(%s)", p)
				assert.Equal(t, []byte(link), b, "ReadFile(%s): exactly the digest, no newline", p)
			}
			assert.Equal(t, []string{
				"+" + data,
				"+" + rev,
				"+" + h.l.TagIndexLink(repo, "v1", d),
				"+" + h.l.TagCurrent(repo, "v1"),
				"+" + h.l.TagIndexLink(repo, "latest", d),
				"+" + h.l.TagCurrent(repo, "latest"),
			}, rec.take(), "write order: data, revision link, then each tag's index before its current")
			backendtest.Clean(t, h.w, ".")

			// Pushing the same bytes again changes nothing; the data is not
			// rewritten.
			before = h.listing()
			_, err = h.repo(repo).PutManifest("", []byte(raw), "v1")
			require.NoError(t, err, "PutManifest again")
			assert.Equal(t, before, h.listing(), "tree after pushing the same manifest again")
			assert.NotContains(t, rec.take(), "+"+data, "existing manifest data is not rewritten")

			// Retagging keeps the tag's index entry for the old manifest.
			raw2 := hImage(regstore.MediaTypeOCIManifest, hConfig)
			d2 := digest.FromString(raw2)
			_, err = h.repo(repo).PutManifest(regstore.MediaTypeOCIManifest, []byte(raw2), "v1")
			require.NoError(t, err, "PutManifest(v2 as v1)")
			hist, err := hSeq(h.tagOf(repo, "v1").History())
			require.NoError(t, err)
			assert.ElementsMatch(t, []digest.Digest{d, d2}, hist, "History(v1) after retag")
			cur, err := h.tagOf(repo, "v1").Digest()
			require.NoError(t, err)
			assert.Equal(t, d2, cur, "Digest(v1) after retag")

			// Nothing of the manifest goes to _layers.
			_, err = h.repo(repo).Blob(d)
			assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(manifest digest): manifests are not linked in _layers")
		})
	}
}

// TestPutManifestKeepsExistingData checks that a manifest whose bytes were
// already stored as a blob reuses them and stays out of _layers.
func TestPutManifestKeepsExistingData(t *testing.T) {
	const repo = "team/app"
	hEach(t, func(t *testing.T, h *hTree) {
		raw := hImage(regstore.MediaTypeOCIManifest, hConfig)
		h.layer(repo, hConfig)
		h.layer("other", raw) // the same bytes, pushed as a blob elsewhere
		before := h.listing()
		m, err := h.repo(repo).PutManifest("", []byte(raw))
		require.NoError(t, err, "PutManifest")
		added, _ := hDiff(before, h.listing())
		assert.Equal(t, hWithDirs(before, h.l.RevisionLink(repo, m.Digest())+"="+m.Digest().String()), hSortListing(added))
	})
}

// TestRepositoryPutBlob checks the files a blob upload writes, including
// the alias link of a sha512 upload.
//
// BUG (subtest "sha256" fails): Repository.PutBlob with a sha256 want
// stores the data but writes no _layers link, so the blob is not in the
// repository. See Repository.link in repository.go: its skip condition
// (d == alias && alias == canonical) also skips the canonical digest when
// want equals it.
func TestRepositoryPutBlob(t *testing.T) {
	const repo = "team/app"
	aD := digest.FromString(hLayerA)
	a512 := digest.SHA512.FromString(hLayerA)
	for _, c := range []struct {
		name  string
		want  digest.Digest
		links []digest.Digest
	}{
		{"no digest", "", []digest.Digest{aD}},
		{"sha256", aD, []digest.Digest{aD}},
		{"sha512", a512, []digest.Digest{aD, a512}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				h.dir(h.l.Blobs())
				before := h.listing()
				b, err := h.repo(repo).PutBlob(strings.NewReader(hLayerA), c.want, int64(len(hLayerA)))
				require.NoError(t, err, "PutBlob(%s)", c.want)
				assert.Equal(t, aD, b.Digest(), "PutBlob(%s).Digest()", c.want)
				files := []string{h.l.BlobData(aD) + "=" + hLayerA}
				for _, l := range c.links {
					files = append(files, h.l.LayerLink(repo, l)+"="+aD.String())
				}
				added, removed := hDiff(before, h.listing())
				assert.Equal(t, hWithDirs(before, files...), hSortListing(added), "files PutBlob(%s) adds", c.want)
				assert.Empty(t, removed)
				for _, l := range c.links {
					got, err := h.repo(repo).Blob(l)
					require.NoError(t, err, "Blob(%s)", l)
					assert.Equal(t, aD, got.Digest(), "Blob(%s).Digest()", l)
				}
			})
		})
	}
	t.Run("mismatch writes nothing", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			before := h.listing()
			_, err := h.repo(repo).PutBlob(strings.NewReader(hLayerA), digest.FromString(hLayerB), -1)
			assert.ErrorIs(t, err, regstore.ErrDigestMismatch)
			var e *regstore.Error
			if assert.ErrorAs(t, err, &e) {
				assert.Equal(t, repo, e.Repository, "Error.Repository")
			}
			assert.Equal(t, before, h.listing())
		})
	})
}

// TestMountLinkUnlink checks cross-repository mounts, linking data already
// in the store, and the registry's blob DELETE.
//
// BUG (subtest "Mount" fails): Mount of a sha256 digest returns success but
// writes no link into the target repository, for the same reason as in
// TestRepositoryPutBlob (Repository.link skips canonical when alias ==
// canonical).
func TestMountLinkUnlink(t *testing.T) {
	aD := digest.FromString(hLayerA)
	a512 := digest.SHA512.FromString(hLayerA)
	t.Run("Mount", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			h.layer("src", hLayerA)
			before := h.listing()
			b, err := h.repo("dst").Mount(h.repo("src"), aD)
			require.NoError(t, err, "Mount(src, %s)", aD)
			assert.Equal(t, aD, b.Digest())
			added, removed := hDiff(before, h.listing())
			assert.Equal(t, hWithDirs(before, h.l.LayerLink("dst", aD)+"="+aD.String()), hSortListing(added), "Mount adds only the link")
			assert.Empty(t, removed)
			_, err = h.repo("dst").Blob(aD)
			assert.NoError(t, err, "Blob(%s) in the target after Mount", aD)
		})
	})
	t.Run("Mount through an alias", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			h.data(hLayerA)
			h.put(h.l.LayerLink("src", a512), aD.String())
			before := h.listing()
			b, err := h.repo("dst").Mount(h.repo("src"), a512)
			require.NoError(t, err, "Mount(src, %s)", a512)
			assert.Equal(t, aD, b.Digest())
			added, _ := hDiff(before, h.listing())
			assert.Equal(t, hWithDirs(before,
				h.l.LayerLink("dst", aD)+"="+aD.String(),
				h.l.LayerLink("dst", a512)+"="+aD.String()), hSortListing(added))
		})
	})
	t.Run("Mount of a blob not in the source", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			h.data(hLayerA)
			h.layer("elsewhere", hLayerA)
			before := h.listing()
			_, err := h.repo("dst").Mount(h.repo("src"), aD)
			hCheckErr(t, err, fs.ErrNotExist, "Mount(src, %s)", aD)
			assert.Equal(t, before, h.listing())
		})
	})
	t.Run("LinkBlob", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			h.data(hLayerA)
			before := h.listing()
			b, err := h.repo("app").LinkBlob(aD)
			require.NoError(t, err, "LinkBlob(%s)", aD)
			assert.Equal(t, int64(len(hLayerA)), b.Size())
			added, _ := hDiff(before, h.listing())
			assert.Equal(t, hWithDirs(before, h.l.LayerLink("app", aD)+"="+aD.String()), hSortListing(added))

			before = h.listing()
			_, err = h.repo("app").LinkBlob(digest.FromString(hLayerB))
			hCheckErr(t, err, fs.ErrNotExist, "LinkBlob(missing data)")
			_, err = h.repo("app").LinkBlob("sha256:nope")
			hCheckErr(t, err, regstore.ErrInvalidDigest, "LinkBlob(invalid)")
			assert.Equal(t, before, h.listing())
		})
	})
	t.Run("UnlinkBlob", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			h.layer("app", hLayerA)
			h.layer("other", hLayerA)
			before := h.listing()
			require.NoError(t, h.repo("app").UnlinkBlob(aD), "UnlinkBlob(%s)", aD)
			added, removed := hDiff(before, h.listing())
			assert.Empty(t, added)
			assert.Equal(t, []string{h.l.LayerLink("app", aD) + "=" + aD.String()}, removed, "UnlinkBlob removes the link file only")
			_, err := h.repo("app").Blob(aD)
			hCheckErr(t, err, fs.ErrNotExist, "Blob after UnlinkBlob")
			_, err = h.s.Blob(aD)
			assert.NoError(t, err, "Store.Blob after UnlinkBlob: data stays")
			_, err = h.repo("other").Blob(aD)
			assert.NoError(t, err, "Blob in another repository after UnlinkBlob")
			hCheckErr(t, h.repo("app").UnlinkBlob(aD), fs.ErrNotExist, "second UnlinkBlob")
			hCheckErr(t, h.repo("none").UnlinkBlob(aD), fs.ErrNotExist, "UnlinkBlob in a repository without it")
		})
	})
}

// TestDeleteManifest checks the registry's DELETE by digest: the revision
// link and every tag currently on the manifest go, whole; everything else
// stays.
func TestDeleteManifest(t *testing.T) {
	const repo = "team/app"
	for _, bk := range hBackends {
		t.Run(bk.name, func(t *testing.T) {
			rec := &hRecorder{WriteFS: bk.new(t)}
			h := newHTree(t, rec)
			m1 := h.image(repo, hConfig, []string{hLayerA}, "a", "b")
			m2 := h.image(repo, hConfig, []string{hLayerB}, "c")
			h.put(h.l.TagIndexLink(repo, "c", m1), m1.String()) // c pointed at m1 before
			h.put(h.l.TagIndexLink(repo, "d", m1), m1.String()) // d, once m1, now m2
			h.tag(repo, "d", m2)
			other := h.image("other", hConfig, []string{hLayerA}, "a")
			require.Equal(t, m1, other, "the same manifest in another repository")
			before := h.listing()
			rec.take()

			require.NoError(t, h.repo(repo).DeleteManifest(m1), "DeleteManifest(%s)", m1)

			_, removed := hDiff(before, h.listing())
			var want []string
			for _, x := range before {
				if strings.HasPrefix(x, h.l.Tag(repo, "a")+"/") || strings.HasPrefix(x, h.l.Tag(repo, "b")+"/") {
					want = append(want, x)
				}
			}
			want = append(want, h.l.RevisionLink(repo, m1)+"="+m1.String())
			assert.Equal(t, hSortListing(want), hSortListing(removed), "DeleteManifest removes tags a and b whole, then the revision link")
			ops := rec.take()
			assert.Equal(t, "-"+h.l.RevisionLink(repo, m1), ops[len(ops)-1], "the revision link goes last")

			_, err := h.repo(repo).Manifest(m1)
			hCheckErr(t, err, fs.ErrNotExist, "Manifest after DeleteManifest")
			_, err = fs.Stat(h.w, h.l.RevisionDir(repo, m1))
			assert.NoError(t, err, "the revision directory stays, empty, as the registry leaves it")
			mans, err := hSeq(h.repo(repo).Manifests())
			require.NoError(t, err)
			assert.Equal(t, []digest.Digest{m2}, mans, "Manifests after DeleteManifest")
			tags, err := hNames(h.repo(repo).Tags())
			require.NoError(t, err)
			assert.Equal(t, []string{"c", "d"}, tags, "Tags after DeleteManifest")
			hist, err := hSeq(h.tagOf(repo, "c").History())
			require.NoError(t, err)
			assert.ElementsMatch(t, []digest.Digest{m1, m2}, hist, "other tags keep their index entries for the deleted digest")
			_, err = h.s.Blob(m1)
			assert.NoError(t, err, "manifest data stays")
			layers, err := hSeq(h.repo(repo).Layers())
			require.NoError(t, err)
			assert.Len(t, layers, 3, "_layers links stay")
			got, err := h.tagOf("other", "a").Resolve()
			require.NoError(t, err, "the same manifest in another repository is untouched")
			assert.Equal(t, m1, got.Digest())

			before = h.listing()
			hCheckErr(t, h.repo(repo).DeleteManifest(m1), fs.ErrNotExist, "second DeleteManifest")
			hCheckErr(t, h.repo(repo).DeleteManifest("sha256:x"), regstore.ErrInvalidDigest, "DeleteManifest(invalid)")
			assert.Equal(t, before, h.listing(), "failed deletes change nothing")
		})
	}
}

// TestReadOnlyWrites checks that on a read-only fs.FS every read works and
// every write fails with errors.ErrUnsupported, changing nothing.
func TestReadOnlyWrites(t *testing.T) {
	const repo = "team/app"
	mem := regstore.NewMemFS()
	h := newHTree(t, mem)
	m := h.image(repo, hConfig, []string{hLayerA}, "v1")
	aD := digest.FromString(hLayerA)
	fsys := fstest.MapFS{}
	for _, x := range h.listing() {
		if name, content, ok := strings.Cut(x, "="); ok {
			fsys[name] = &fstest.MapFile{Data: []byte(content)}
		}
	}
	snapshot := maps.Clone(fsys)
	s, err := regstore.Open(fsys)
	require.NoError(t, err)
	r, err := s.Repository(repo)
	require.NoError(t, err)
	tag, err := r.Tag("v1")
	require.NoError(t, err)
	other, err := s.Repository("other")
	require.NoError(t, err)

	got, err := tag.Resolve()
	require.NoError(t, err, "Resolve on a read-only fs.FS")
	assert.Equal(t, m, got.Digest())

	raw := hImage(regstore.MediaTypeOCIManifest, hConfig)
	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"Store.PutBlob", func() error { _, err := s.PutBlob(strings.NewReader("x"), "", -1); return err }},
		{"Repository.PutBlob", func() error { _, err := r.PutBlob(strings.NewReader("x"), "", -1); return err }},
		{"Repository.LinkBlob", func() error { _, err := other.LinkBlob(aD); return err }},
		{"Repository.Mount", func() error { _, err := other.Mount(r, aD); return err }},
		{"Repository.UnlinkBlob", func() error { return r.UnlinkBlob(aD) }},
		{"Repository.PutManifest", func() error { _, err := r.PutManifest("", []byte(raw), "v2"); return err }},
		{"Repository.DeleteManifest", func() error { return r.DeleteManifest(m) }},
		{"Tag.Set", func() error { return tag.Set(m) }},
		{"Tag.Delete", func() error { return tag.Delete() }},
	} {
		err := c.op()
		assert.ErrorIs(t, err, errors.ErrUnsupported, "%s on a read-only fs.FS", c.name)
		var e *regstore.Error
		assert.ErrorAs(t, err, &e, "%s on a read-only fs.FS", c.name)
	}
	assert.Equal(t, snapshot, fsys, "read-only tree unchanged")
	for name, f := range fsys {
		assert.True(t, bytes.Equal(snapshot[name].Data, f.Data), "content of %s unchanged", name)
	}
}

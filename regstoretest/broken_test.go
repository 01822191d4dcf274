package regstoretest_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"testing"
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var brokenBackends = []struct {
	name string
	new  func(t *testing.T) regstore.WriteFS
}{
	{"MemFS", func(*testing.T) regstore.WriteFS { return regstore.NewMemFS() }},
	{"Dir", func(t *testing.T) regstore.WriteFS {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}},
}

// brokenFixture is one image tagged latest in repository app.
type brokenFixture struct {
	s     *regstore.Store
	img   *regstore.Manifest
	layer digest.Digest
}

func newBrokenFixture(t *testing.T, w regstore.WriteFS) brokenFixture {
	s, err := regstore.Open(w)
	require.NoError(t, err)
	r, err := s.Repository("app")
	require.NoError(t, err)
	img := regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 32)}}, "latest")
	return brokenFixture{s: s, img: img, layer: img.Layers()[0].Digest}
}

func read(t *testing.T, s *regstore.Store, p string) []byte {
	t.Helper()
	b, err := fs.ReadFile(s.FS(), p)
	require.NoError(t, err, "ReadFile(%q)", p)
	return b
}

func TestLinkPath(t *testing.T) {
	f := newBrokenFixture(t, regstore.NewMemFS())
	l := f.s.Layout()
	for _, tc := range []struct {
		ref, want string
	}{
		{"latest", l.TagCurrent("app", "latest")},
		{"nosuchtag", l.TagCurrent("app", "nosuchtag")},
		{string(f.layer), l.LayerLink("app", f.layer)},
		{string(f.img.Digest()), l.RevisionLink("app", f.img.Digest())},
	} {
		got, err := regstoretest.LinkPath(f.s, "app", tc.ref)
		require.NoError(t, err, "LinkPath(app, %s)", tc.ref)
		assert.Equal(t, tc.want, got, "LinkPath(app, %s)", tc.ref)
	}
	for _, tc := range []struct{ repo, ref string }{{"app", "-bad tag"}, {"App", "latest"}, {"app", "sha256:short"}} {
		_, err := regstoretest.LinkPath(f.s, tc.repo, tc.ref)
		assert.Error(t, err, "LinkPath(%s, %s)", tc.repo, tc.ref)
	}
}

// TestBrokenStatesWriteWhatTheySay checks, on both backends, the bytes each
// broken state leaves.
func TestBrokenStatesWriteWhatTheySay(t *testing.T) {
	for _, bk := range brokenBackends {
		t.Run(bk.name, func(t *testing.T) {
			f := newBrokenFixture(t, bk.new(t))
			s, l := f.s, f.s.Layout()
			cur := l.TagCurrent("app", "latest")

			require.NoError(t, regstoretest.NewlineLink(s, "app", "latest"))
			assert.Equal(t, f.img.Digest().String()+"\n", string(read(t, s, cur)), "NewlineLink")

			require.NoError(t, regstoretest.UnknownAlgorithmLink(s, "app", "latest"))
			assert.Regexp(t, regexp.MustCompile(`^md5:[0-9a-f]{32}$`), string(read(t, s, cur)), "UnknownAlgorithmLink")

			require.NoError(t, regstoretest.GarbageLink(s, "app", "latest"))
			_, err := regstore.ParseLink(read(t, s, cur))
			assert.ErrorIs(t, err, regstore.ErrCorruptLink, "GarbageLink")

			require.NoError(t, regstoretest.EmptyLink(s, "app", "latest"))
			assert.Empty(t, read(t, s, cur), "EmptyLink")

			before := read(t, s, l.BlobData(f.layer))
			require.NoError(t, regstoretest.CorruptBlob(s, f.layer))
			after := read(t, s, l.BlobData(f.layer))
			assert.Len(t, after, len(before), "CorruptBlob keeps the length")
			assert.NotEqual(t, f.layer, digest.FromBytes(after), "CorruptBlob changes the digest")

			require.NoError(t, regstoretest.DanglingLink(s, "app", string(f.layer)))
			_, err = fs.Stat(s.FS(), l.BlobData(f.layer))
			assert.ErrorIs(t, err, fs.ErrNotExist, "DanglingLink removes the data")
			_, err = fs.Stat(s.FS(), l.LayerLink("app", f.layer))
			assert.NoError(t, err, "DanglingLink keeps the link")

			require.NoError(t, regstoretest.TempFile(s, "app", string(f.img.Digest())))
			entries, err := fs.ReadDir(s.FS(), l.RevisionDir("app", f.img.Digest()))
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.Len(t, names, 2, "link and its temporary sibling")
			assert.Regexp(t, regexp.MustCompile(`^link\..+\.tmp$`), names[1])

			require.NoError(t, regstoretest.UnknownFile(s, "stray/file", []byte("x")))
			assert.Equal(t, "x", string(read(t, s, path.Join(l.Root(), "stray/file"))))
		})
	}
}

func TestHalfWrittenUpload(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for _, bk := range brokenBackends {
		for _, tc := range []struct {
			name    string
			started time.Time
		}{{"with startedat", started}, {"without startedat", time.Time{}}} {
			t.Run(bk.name+"/"+tc.name, func(t *testing.T) {
				f := newBrokenFixture(t, bk.new(t))
				s, l := f.s, f.s.Layout()
				const id = "019a2f3e-7b1c-7d2e-8f3a-4b5c6d7e8f90"
				require.NoError(t, regstoretest.HalfWrittenUpload(s, "app", id, tc.started))
				data := read(t, s, l.UploadData("app", id))
				require.NotEmpty(t, data)
				state0 := read(t, s, path.Join(l.UploadHashStates("app", id), "sha256", "0"))
				assert.Equal(t, "sha\x03", string(state0[:4]), "Go sha256 MarshalBinary state")
				stateN := read(t, s, path.Join(l.UploadHashStates("app", id), "sha256", fmt.Sprint(len(data))))
				assert.Len(t, stateN, len(state0))
				r, err := s.Repository("app")
				require.NoError(t, err)
				var ups []*regstore.Upload
				for u, err := range r.Uploads() {
					require.NoError(t, err)
					ups = append(ups, u)
				}
				require.Len(t, ups, 1)
				assert.Equal(t, id, ups[0].ID)
				assert.Equal(t, int64(len(data)), ups[0].Size)
				if tc.started.IsZero() {
					_, err := fs.Stat(s.FS(), l.UploadStartedAt("app", id))
					assert.ErrorIs(t, err, fs.ErrNotExist, "no startedat")
					assert.True(t, ups[0].StartedAt.IsZero())
				} else {
					assert.Equal(t, "2026-01-02T02:04:05Z", string(read(t, s, l.UploadStartedAt("app", id))), "startedat: RFC 3339, UTC")
					assert.True(t, tc.started.Equal(ups[0].StartedAt))
				}
			})
		}
	}
	f := newBrokenFixture(t, regstore.NewMemFS())
	for _, id := range []string{"", "a/b", ".."} {
		assert.Error(t, regstoretest.HalfWrittenUpload(f.s, "app", id, time.Time{}), "HalfWrittenUpload(id %q)", id)
	}
}

func TestCreatedContent(t *testing.T) {
	for _, bk := range brokenBackends {
		t.Run(bk.name, func(t *testing.T) {
			f := newBrokenFixture(t, bk.new(t))
			s, l := f.s, f.s.Layout()

			d, err := regstoretest.OrphanBlob(s, []byte("orphan"))
			require.NoError(t, err)
			assert.Equal(t, digest.FromString("orphan"), d)
			assert.Equal(t, "orphan", string(read(t, s, l.BlobData(d))))

			d, err = regstoretest.OversizeManifest(s, "app")
			require.NoError(t, err)
			assert.Greater(t, len(read(t, s, l.BlobData(d))), regstore.MaxManifestSize)
			assert.Equal(t, d.String(), string(read(t, s, l.RevisionLink("app", d))))
			r, err := s.Repository("app")
			require.NoError(t, err)
			_, err = r.Manifest(d)
			assert.ErrorIs(t, err, regstore.ErrManifestTooLarge)

			d, err = regstoretest.InvalidManifest(s, "app", nil)
			require.NoError(t, err)
			assert.Equal(t, d.String(), string(read(t, s, l.RevisionLink("app", d))))
			_, err = r.Manifest(d)
			assert.ErrorIs(t, err, regstore.ErrManifestInvalid)
		})
	}
}

func TestTagAndReferenceStates(t *testing.T) {
	for _, bk := range brokenBackends {
		t.Run(bk.name, func(t *testing.T) {
			f := newBrokenFixture(t, bk.new(t))
			s, l := f.s, f.s.Layout()
			r, err := s.Repository("app")
			require.NoError(t, err)

			require.NoError(t, regstoretest.TagWithoutIndexEntry(s, "app", "latest"))
			_, err = fs.Stat(s.FS(), l.TagIndexLink("app", "latest", f.img.Digest()))
			assert.ErrorIs(t, err, fs.ErrNotExist)
			tg, err := r.Tag("latest")
			require.NoError(t, err)
			_, err = tg.Resolve()
			assert.NoError(t, err, "the tag still resolves")

			require.NoError(t, regstoretest.UnlinkReference(s, "app", f.img.Digest(), f.layer))
			_, err = r.Blob(f.layer)
			assert.ErrorIs(t, err, fs.ErrNotExist, "the layer is no longer in app")
			_, err = s.Blob(f.layer)
			assert.NoError(t, err, "its data stays")
			assert.Error(t, regstoretest.UnlinkReference(s, "app", f.img.Digest(), digest.FromString("x")), "not a reference")

			require.NoError(t, regstoretest.TagWithoutManifest(s, "app", "latest"))
			_, err = tg.Resolve()
			assert.ErrorIs(t, err, fs.ErrNotExist, "the tag no longer resolves")
			_, err = tg.Digest()
			assert.NoError(t, err, "but its current link is there")
		})
	}
}

// TestBrokenStatesNeedAWriter: on a read-only backend every broken state
// fails with errors.ErrUnsupported.
func TestBrokenStatesNeedAWriter(t *testing.T) {
	f := newBrokenFixture(t, regstore.NewMemFS())
	ro := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(f.s.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(f.s.FS(), p)
		ro[p] = &fstest.MapFile{Data: b}
		return err
	}))
	s, err := regstore.Open(ro)
	require.NoError(t, err)
	calls := map[string]error{
		"DanglingLink":         regstoretest.DanglingLink(s, "app", "latest"),
		"EmptyLink":            regstoretest.EmptyLink(s, "app", "latest"),
		"NewlineLink":          regstoretest.NewlineLink(s, "app", "latest"),
		"UnknownAlgorithmLink": regstoretest.UnknownAlgorithmLink(s, "app", "latest"),
		"GarbageLink":          regstoretest.GarbageLink(s, "app", "latest"),
		"CorruptBlob":          regstoretest.CorruptBlob(s, f.layer),
		"HalfWrittenUpload":    regstoretest.HalfWrittenUpload(s, "app", "019a2f3e-7b1c-7d2e-8f3a-4b5c6d7e8f90", time.Now()),
		"TagWithoutIndexEntry": regstoretest.TagWithoutIndexEntry(s, "app", "latest"),
		"TagWithoutManifest":   regstoretest.TagWithoutManifest(s, "app", "latest"),
		"UnlinkReference":      regstoretest.UnlinkReference(s, "app", f.img.Digest(), f.layer),
		"TempFile":             regstoretest.TempFile(s, "app", "latest"),
		"UnknownFile":          regstoretest.UnknownFile(s, "x", nil),
	}
	_, calls["OrphanBlob"] = regstoretest.OrphanBlob(s, []byte("x"))
	_, calls["OversizeManifest"] = regstoretest.OversizeManifest(s, "app")
	_, calls["InvalidManifest"] = regstoretest.InvalidManifest(s, "app", nil)
	for name, err := range calls {
		assert.True(t, errors.Is(err, errors.ErrUnsupported), "%s on a read-only backend = %v, want ErrUnsupported", name, err)
	}
}

// ExampleNewlineLink breaks a tag's current link the way a shell script
// does, and shows what the integrity check says.
func ExampleNewlineLink() {
	s, _ := regstore.Open(regstore.NewMemFS())
	r, _ := s.Repository("app")
	img, _ := regstoretest.WriteImage(r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 16)}}, "latest")
	if err := regstoretest.NewlineLink(s, "app", "latest"); err != nil {
		fmt.Println(err)
		return
	}
	for p, err := range check.Problems(context.Background(), s, check.Options{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(p.Kind, p.Repository, p.Tag, p.Target == img.Digest())
	}
	// Output:
	// link-trailing-bytes app latest true
}

package gc_test

import (
	"crypto/md5"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flatFS is a MemFS seen as an object store sees itself: a flat listing
// (WalkFS) whose FileInfo knows each file's MD5 (ContentMD5), and a count
// of the link files opened.
type flatFS struct {
	*regstore.MemFS
	linkOpens atomic.Int64
}

type md5Info struct {
	fs.FileInfo
	sum [16]byte
}

func (i md5Info) Sys() any                            { return i }
func (i md5Info) ContentMD5() (sum [16]byte, ok bool) { return i.sum, true }

func (f *flatFS) Open(name string) (fs.File, error) {
	if strings.HasSuffix(name, "/link") {
		f.linkOpens.Add(1)
	}
	return f.MemFS.Open(name)
}

func (f *flatFS) ReadFile(name string) ([]byte, error) {
	if strings.HasSuffix(name, "/link") {
		f.linkOpens.Add(1)
	}
	return f.MemFS.ReadFile(name)
}

func (f *flatFS) WalkFiles(dir string, fn func(string, fs.FileInfo) error) error {
	var names []string
	err := fs.WalkDir(f.MemFS, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names) // byte order of the keys
	for _, p := range names {
		fi, err := f.MemFS.Stat(p)
		if err != nil {
			return err
		}
		raw, err := f.MemFS.ReadFile(p)
		if err != nil {
			return err
		}
		if err := fn(p, md5Info{fi, md5.Sum(raw)}); err != nil {
			if err == fs.SkipAll {
				return nil
			}
			return err
		}
	}
	return nil
}

// TestPlanGCFlatListing: on a backend with a flat listing and content MD5s,
// Mark makes the same plan as on a directory tree without opening a
// single link file, and still reads a link whose content the listing does
// not prove.
func TestPlanGCFlatListing(t *testing.T) {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	require.NoError(t, err)
	_, err = regstoretest.Generate(s, regstoretest.GenerateOptions{Repositories: 12, TagsPerRepo: 3,
		ManifestsPerRepo: 4, LayersPerManifest: 3, SharedFraction: 0.3, UntaggedFraction: 0.25, BlobSize: 64, Seed: 7})
	require.NoError(t, err)
	// A loose linked blob (collectable link and data) and an alias link
	// whose content is not the digest of its path.
	app := mustRepo(t, s, "org000/app000")
	loose, err := app.PutBlob(strings.NewReader("loose"), "", -1)
	require.NoError(t, err)
	other, err := app.PutBlob(strings.NewReader("other"), "", -1)
	require.NoError(t, err)
	alias := s.Layout().LayerLink(app.Name(), loose.Digest())
	regstoretestPut(t, mem, alias, other.Digest().String())
	// A tag whose current manifest its index does not record: its link's
	// MD5 matches no candidate, so it is read.
	require.NoError(t, regstoretest.TagWithoutIndexEntry(s, app.Name(), regstoretest.TagName(0)))
	backdate(t, s, time.Now().Add(-2*time.Hour))

	flat := &flatFS{MemFS: mem}
	fs2, err := regstore.Open(flat)
	require.NoError(t, err)
	for _, o := range []gc.Options{{}, {DeleteUntagged: true}, {DeleteUntagged: true, Grace: -1}} {
		now := time.Now()
		o.Now = func() time.Time { return now }
		want, err := gc.Mark(t.Context(), s, o)
		require.NoError(t, err)
		flat.linkOpens.Store(0)
		got, err := gc.Mark(t.Context(), fs2, o)
		require.NoError(t, err)
		assert.Equal(t, want, got, "plan with flat listing, %+v", o)
		assert.Equal(t, int64(1), flat.linkOpens.Load(), "links opened: only the tag link missing from its index; the others are known from their MD5s, sha256 layer links by their paths")
		assert.NotEmpty(t, got.Blobs, "something to collect")
		assert.Contains(t, got.LayerLinks[app.Name()], loose.Digest(), "the alias link to an unreferenced blob goes")
	}
}

// regstoretestPut replaces the file name on w with content.
func regstoretestPut(t *testing.T, w regstore.WriteFS, name, content string) {
	t.Helper()
	require.NoError(t, w.Remove(name))
	fw, err := w.Create(name)
	require.NoError(t, err)
	_, err = fw.Write([]byte(content))
	require.NoError(t, err)
	require.NoError(t, fw.Commit())
}

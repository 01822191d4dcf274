package retain

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walkMem is a MemFS with a flat listing, as an object store has: the
// WalkFS paths of Decide and of the view are taken on it.
type walkMem struct{ *regstore.MemFS }

func (w walkMem) WalkFiles(dir string, fn func(string, fs.FileInfo) error) error {
	err := fs.WalkDir(w.MemFS, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(p, fi)
	})
	if err == fs.SkipAll {
		return nil
	}
	return err
}

func TestHideTags(t *testing.T) {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	require.NoError(t, err)
	r, err := s.Repository("a/b")
	require.NoError(t, err)
	regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 10)}}, "t1", "t2", "t3")
	l := s.Layout()
	for _, backend := range []fs.FS{mem, walkMem{mem}} {
		view := hideTags(backend, []string{l.Tag("a/b", "t2")})
		_, isWalk := view.(regstore.WalkFS)
		_, wasWalk := backend.(regstore.WalkFS)
		assert.Equal(t, wasWalk, isWalk, "the view has a flat listing exactly when the backend has one")

		for _, p := range []string{l.Tag("a/b", "t2"), l.TagCurrent("a/b", "t2"), l.TagIndex("a/b", "t2")} {
			_, err := fs.Stat(view, p)
			assert.ErrorIs(t, err, fs.ErrNotExist, "Stat(%s)", p)
			_, err = view.Open(p)
			assert.ErrorIs(t, err, fs.ErrNotExist, "Open(%s)", p)
			_, err = fs.ReadFile(view, p)
			assert.ErrorIs(t, err, fs.ErrNotExist, "ReadFile(%s)", p)
		}
		_, err := fs.Stat(view, l.TagCurrent("a/b", "t1"))
		assert.NoError(t, err, "other tags stay")
		_, err = fs.Stat(view, l.Tag("a/b", "t22"))
		assert.ErrorIs(t, err, fs.ErrNotExist, "t22 does not exist at all")

		names := func(es []fs.DirEntry) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Name())
			}
			return out
		}
		es, err := fs.ReadDir(view, l.Tags("a/b"))
		require.NoError(t, err)
		assert.Equal(t, []string{"t1", "t3"}, names(es))
		// An opened tags directory lists without the hidden tag too, in
		// batches.
		f, err := view.Open(l.Tags("a/b"))
		require.NoError(t, err)
		var got []string
		for {
			es, err := f.(fs.ReadDirFile).ReadDir(1)
			got = append(got, names(es)...)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
		f.Close()
		assert.Equal(t, []string{"t1", "t3"}, got)

		var files []string
		require.NoError(t, regstore.WalkFiles(view, l.Repository("a/b"), func(p string, _ fs.FileInfo) error {
			files = append(files, p)
			return nil
		}))
		assert.Contains(t, files, l.TagCurrent("a/b", "t1"))
		assert.NotContains(t, files, l.TagCurrent("a/b", "t2"))
		assert.False(t, slices.ContainsFunc(files, func(p string) bool { return (&untagged{hidden: map[string]bool{l.Tag("a/b", "t2"): true}}).isHidden(p) }))
	}
}

// TestDecideFlatListing: a backend with a flat listing gives the same plan.
func TestDecideFlatListing(t *testing.T) {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	require.NoError(t, err)
	_, err = regstoretest.Generate(s, regstoretest.GenerateOptions{Repositories: 4, TagsPerRepo: 6, ManifestsPerRepo: 6,
		LayersPerManifest: 2, SharedFraction: 0.5, UntaggedFraction: 0, BlobSize: 16, Seed: 3})
	require.NoError(t, err)
	now := time.Now().Add(24 * time.Hour)
	i := 0
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		for tg, err := range r.Tags() {
			require.NoError(t, err)
			i++
			require.NoError(t, mem.Chtimes(s.Layout().TagCurrent(r.Name(), tg.Name()), now.Add(-time.Duration(i%5)*time.Hour)))
		}
	}
	flat, err := regstore.Open(walkMem{mem})
	require.NoError(t, err)
	p := &Policy{Rules: []Rule{{KeepLast: 2}}}
	opts := Options{Now: func() time.Time { return now }, Grace: -1}
	a, err := Decide(context.Background(), s, p, opts)
	require.NoError(t, err)
	b, err := Decide(context.Background(), flat, p, opts)
	require.NoError(t, err)
	require.NotZero(t, a.Removed())
	require.NotZero(t, a.Bytes)
	assert.Equal(t, a.Tags, b.Tags)
	assert.Equal(t, a.Bytes, b.Bytes)
	assert.Equal(t, a.GC.Blobs, b.GC.Blobs)
}

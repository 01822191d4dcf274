//go:build linux

package regstore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within runs fn and fails the test if it does not return in 10 s (a call
// blocked on a named pipe never returns).
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10 s", what)
		return nil
	}
}

// TestDirRefusesNamedPipes: every read of a Dir, on the openat2 path and
// on the os.Root fallback, refuses a FIFO at once with ErrNotRegular
// (matching fs.ErrInvalid) instead of waiting for a writer.
func TestDirRefusesNamedPipes(t *testing.T) {
	for _, fast := range []bool{true, false} {
		name := map[bool]string{true: "openat2", false: "os.Root"}[fast]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "a"), 0o755))
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "a", "fifo"), 0o644))
			d, err := regstore.OpenDir(dir)
			require.NoError(t, err)
			defer d.Close()
			if !fast {
				regstore.DisableFastPath(d)
			}
			calls := map[string]func() error{
				"Open":        func() error { f, err := d.Open("a/fifo"); closeIf(f); return err },
				"ReadFile":    func() error { _, err := d.ReadFile("a/fifo"); return err },
				"ReadFileMax": func() error { _, err := regstore.ReadFileMax(d, "a/fifo", 10); return err },
				"ReadLink":    func() error { _, err := regstore.ReadLink(d, "a/fifo"); return err },
			}
			for what, call := range calls {
				err := within(t, what, call)
				assert.ErrorIs(t, err, regstore.ErrNotRegular, what)
				assert.ErrorIs(t, err, fs.ErrInvalid, what)
			}
			// Stat describes it without opening it.
			fi, err := d.Stat("a/fifo")
			require.NoError(t, err)
			assert.Equal(t, fs.ModeNamedPipe, fi.Mode().Type())
		})
	}
}

func closeIf(f fs.File) {
	if f != nil {
		f.Close()
	}
}

// TestStoreRefusesNamedPipes: a FIFO in place of a tag's link, or of a
// manifest's blob data, makes the store's reads fail promptly.
func TestStoreRefusesNamedPipes(t *testing.T) {
	for _, victim := range []string{"link", "data"} {
		t.Run(victim, func(t *testing.T) {
			dir := t.TempDir()
			d, err := regstore.OpenDir(dir)
			require.NoError(t, err)
			defer d.Close()
			s, err := regstore.Open(d)
			require.NoError(t, err)
			r, err := s.Repository("team/app")
			require.NoError(t, err)
			m := regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 100)}}, "v1")
			p := s.Layout().TagCurrent("team/app", "v1")
			if victim == "data" {
				p = s.Layout().BlobData(m.Digest())
			}
			full := filepath.Join(dir, filepath.FromSlash(p))
			require.NoError(t, os.Remove(full))
			require.NoError(t, syscall.Mkfifo(full, 0o644))
			err = within(t, "resolve", func() error {
				tag, err := r.Tag("v1")
				if err != nil {
					return err
				}
				_, err = tag.Resolve()
				return err
			})
			require.Error(t, err)
			if victim == "data" {
				// Stat sees a FIFO of size 0; the read refuses it.
				_, err = r.Manifest(m.Digest())
				assert.ErrorIs(t, err, regstore.ErrNotRegular)
				_, err = s.Manifest(m.Digest())
				assert.ErrorIs(t, err, regstore.ErrNotRegular)
			}
		})
	}
}

// countingFS counts the bytes read through files it opens. It has no
// bounded-read method of its own, so regstore.ReadFileMax reads through
// Open like any fs.FS.
type countingFS struct {
	fs.FS
	read atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, n: &c.read}, nil
}

type countingFile struct {
	fs.File
	n *atomic.Int64
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.n.Add(int64(n))
	return n, err
}

// TestHugeManifestDataNotRead: a revision whose blob data is a 1 GiB
// (sparse) file is refused as too large after reading at most
// MaxManifestSize+1 bytes of it, whether the reader trusts the size it
// stats (Repository.Manifest) or reads by path (Store.Manifest), and on
// the Dir's own bounded read.
func TestHugeManifestDataNotRead(t *testing.T) {
	dir := t.TempDir()
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	s, err := regstore.Open(d)
	require.NoError(t, err)
	r, err := s.Repository("team/app")
	require.NoError(t, err)
	m := regstoretest.Push(t, r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 100)}}, "v1")
	data := filepath.Join(dir, filepath.FromSlash(s.Layout().BlobData(m.Digest())))
	require.NoError(t, os.Truncate(data, 1<<30))

	cfs := &countingFS{FS: d}
	cs, err := regstore.Open(cfs, regstore.ReadOnly())
	require.NoError(t, err)
	cr, err := cs.Repository("team/app")
	require.NoError(t, err)

	_, err = cs.Manifest(m.Digest())
	assert.ErrorIs(t, err, regstore.ErrManifestTooLarge)
	assert.LessOrEqual(t, cfs.read.Load(), int64(regstore.MaxManifestSize+1), "Store.Manifest read")

	cfs.read.Store(0)
	_, err = cr.Manifest(m.Digest())
	assert.ErrorIs(t, err, regstore.ErrManifestTooLarge)
	tag, err := cr.Tag("v1")
	require.NoError(t, err)
	_, err = tag.Resolve()
	assert.ErrorIs(t, err, regstore.ErrManifestTooLarge)
	assert.LessOrEqual(t, cfs.read.Load(), int64(regstore.MaxManifestSize+1), "Repository.Manifest read")

	// The Dir's own bounded read (openat2 and os.Root) stops at max+1.
	for _, fast := range []bool{true, false} {
		d2, err := regstore.OpenDir(dir)
		require.NoError(t, err)
		if !fast {
			regstore.DisableFastPath(d2)
		}
		b, err := regstore.ReadFileMax(d2, s.Layout().BlobData(m.Digest()), regstore.MaxManifestSize)
		require.NoError(t, err)
		assert.Equal(t, regstore.MaxManifestSize+1, len(b), "bounded read length")
		d2.Close()
	}
	_ = context.Background
	_ = errors.Is
	_ = io.EOF
}

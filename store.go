package regstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Store is a v2 storage layout on a backend. It keeps no state besides its
// backend and layout, so any number of Stores and processes (a live
// registry among them) may share one tree; every change it makes is atomic
// per file and ordered so that no pointer is published before its target.
type Store struct {
	fsys     fs.FS
	layout   Layout
	readOnly bool
	closer   io.Closer // the backend OpenPath opened; nil otherwise
}

// Option configures [Open].
type Option func(*options)

type options struct {
	root     string
	readOnly bool
}

// WithLayoutRoot sets the path, within the backend, of the v2 directory.
// The default is [DefaultLayoutRoot], which suits a backend opened on the
// registry's rootdirectory. Use "." for a backend opened on the v2
// directory itself.
func WithLayoutRoot(root string) Option {
	return func(o *options) { o.root = root }
}

// ReadOnly makes every write of the store fail with an error wrapping
// [errors.ErrUnsupported], even on a writable backend: for tools that must
// not change the tree (dry runs, inspection) and still want the backend's
// fast read paths, which a wrapper hiding its write methods would hide too.
func ReadOnly() Option {
	return func(o *options) { o.readOnly = true }
}

// Open returns the store in fsys. If fsys is a [WriteFS], the store can
// change the tree; otherwise every write fails with an error wrapping
// [errors.ErrUnsupported]. Open does no I/O: an empty backend is an empty
// store.
func Open(fsys fs.FS, opts ...Option) (*Store, error) {
	o := options{root: DefaultLayoutRoot}
	for _, opt := range opts {
		opt(&o)
	}
	l, err := NewLayout(o.root)
	if err != nil {
		return nil, err
	}
	return &Store{fsys: fsys, layout: l, readOnly: o.readOnly}, nil
}

// FS is the store's backend.
func (s *Store) FS() fs.FS { return s.fsys }

// Layout is the store's path grammar.
func (s *Store) Layout() Layout { return s.layout }

// Writer returns the backend's write side. It is an error wrapping
// [errors.ErrUnsupported] when the backend has none or the store was opened
// [ReadOnly]. Tools that write below the handles (a collector, a repair)
// use it together with [Store.Layout], [WriteLink], [Rename] and
// [RemoveAll].
func (s *Store) Writer() (WriteFS, error) { return s.writer("write", "", "") }

// writer returns the backend's write side, or an error wrapping
// errors.ErrUnsupported that names the operation.
func (s *Store) writer(op, repo, ref string) (WriteFS, error) {
	w, ok := s.fsys.(WriteFS)
	if !ok || s.readOnly {
		return nil, &Error{Op: op, Repository: repo, Reference: ref,
			Err: fmt.Errorf("store on %T is read-only: %w", s.fsys, errors.ErrUnsupported)}
	}
	return w, nil
}

// OpenPath opens the registry tree in the OS directory dir, in one call:
// dir is either the registry's rootdirectory (the folder holding docker/)
// or the v2 folder itself (holding blobs/ and repositories/), which
// OpenPath tells apart. The backend is a [Dir]; [Store.Close] releases it.
// A directory that does not exist is an error wrapping [fs.ErrNotExist];
// an empty directory is an empty store (the rootdirectory form).
func OpenPath(dir string, opts ...Option) (*Store, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, &Error{Op: "open", Path: dir, Err: unwrapPathError(err)}
	}
	if !fi.IsDir() {
		return nil, &Error{Op: "open", Path: dir, Err: fmt.Errorf("not a directory: %w", fs.ErrInvalid)}
	}
	// Symbolic links above the layout (docker/ on another disk) are
	// resolved; those inside it stay refused.
	root, layoutRoot, err := FindLayout(dir)
	if err != nil {
		return nil, &Error{Op: "open", Path: dir, Err: err}
	}
	opts = append([]Option{WithLayoutRoot(layoutRoot)}, opts...)
	d, err := OpenDir(root)
	if err != nil {
		return nil, err
	}
	s, err := Open(d, opts...)
	if err != nil {
		d.Close()
		return nil, err
	}
	s.closer = d
	return s, nil
}

// Close releases the backend when the store opened it ([OpenPath]). A store
// made by [Open] does not own its backend, and Close does nothing: the
// caller closes the backend it opened.
func (s *Store) Close() error {
	if s.closer == nil {
		return nil
	}
	c := s.closer
	s.closer = nil
	return c.Close()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// unwrapPathError is the cause of an *fs.PathError, so that an Error that
// names the path does not say it twice.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

package regstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
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
	create   bool
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

// Create lets [Open] accept a backend that holds other things and no
// layout yet: the store is empty, and its first write creates the layout
// at the layout root. Without it, such a backend is refused with
// [ErrNoLayout], since it is more likely a wrong folder than a new tree.
func Create() Option {
	return func(o *options) { o.create = true }
}

// Open returns the store in fsys. If fsys is a [WriteFS], the store can
// change the tree; otherwise every write fails with an error wrapping
// [errors.ErrUnsupported].
//
// Open looks at the backend once: the layout root must exist (for the
// layout root ".", the backend must hold repositories/ or blobs/), or the
// backend must be empty, which is an empty store (a new tree). A backend
// that holds other things and no layout is an error wrapping
// [ErrNoLayout], unless [Create] is given.
func Open(fsys fs.FS, opts ...Option) (*Store, error) {
	o := options{root: DefaultLayoutRoot}
	for _, opt := range opts {
		opt(&o)
	}
	l, err := NewLayout(o.root)
	if err != nil {
		return nil, err
	}
	if !o.create {
		if err := checkLayout(fsys, l); err != nil {
			return nil, err
		}
	}
	return &Store{fsys: fsys, layout: l, readOnly: o.readOnly}, nil
}

// checkLayout reports an error wrapping ErrNoLayout when fsys holds
// something and no layout at l's root.
func checkLayout(fsys fs.FS, l Layout) error {
	var probes []string
	if l.root == "." {
		probes = []string{l.Repositories(), l.Blobs()}
	} else {
		probes = []string{l.root}
	}
	for _, p := range probes {
		fi, err := fs.Stat(fsys, p)
		if err == nil && fi.IsDir() {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &Error{Op: "open", Path: p, Err: err}
		}
	}
	entries, err := fs.ReadDir(fsys, ".")
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil // an empty backend: a new tree
	}
	if err != nil {
		return &Error{Op: "open", Path: ".", Err: err}
	}
	names := make([]string, 0, 3)
	for _, e := range entries[:min(3, len(entries))] {
		names = append(names, e.Name())
	}
	more := ""
	if len(entries) > len(names) {
		more = fmt.Sprintf(" and %d more", len(entries)-len(names))
	}
	return &Error{Op: "open", Path: l.root, Err: fmt.Errorf("%w: want %s, found %s%s",
		ErrNoLayout, strings.Join(probes, " or "), strings.Join(names, ", "), more)}
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

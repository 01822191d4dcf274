package regstore

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"time"
)

// WriteFS is the write side of a backend. The read side is the embedded
// [fs.FS]; the [fs.StatFS], [fs.ReadDirFS] and [fs.ReadFileFS] upgrades are
// used when present.
//
// The contract is the smallest one that content-addressed, atomic writes
// need, and it suits an object store that has no rename:
//
//   - Create returns a [FileWriter] for name. Nothing is visible at name
//     until Commit returns nil; a reader sees either the old content or the
//     whole new content, never a part. Commit replaces an existing file.
//     Parent directories are created as needed (an object store has none to
//     create); Cancel, or a failed Commit, removes again those that Create
//     made and that are still empty, so a failed write leaves the tree as it
//     was. Create fails with an error wrapping [fs.ErrInvalid] when name is
//     not a valid [fs.ValidPath] or is ".".
//   - Remove deletes a file or an empty directory. A missing name is an
//     error wrapping [fs.ErrNotExist]; a non-empty directory is an error
//     wrapping [fs.ErrExist].
//
// Every error is an [*fs.PathError] naming the operation and the path.
// Optional upgrades are found by type assertion: [RenameFS], [RemoveAllFS],
// [LinkFS], [ChtimesFS], and on the read side [WalkFS].
type WriteFS interface {
	fs.FS
	Create(name string) (FileWriter, error)
	Remove(name string) error
}

// FileWriter receives the content of one file. Exactly one of Commit or
// Cancel must be called; after either, the writer is unusable.
type FileWriter interface {
	io.Writer
	// Commit makes the written bytes durable and then publishes them at the
	// writer's name in one atomic step.
	Commit() error
	// Cancel discards the written bytes. The name is left as it was.
	Cancel() error
}

// RenameFS is an optional upgrade: Rename moves oldname to newname in one
// atomic step, replacing a file at newname and creating its parent
// directories as needed. Stores fall back to copy-then-remove without it.
type RenameFS interface {
	WriteFS
	Rename(oldname, newname string) error
}

// RemoveAllFS is an optional upgrade: RemoveAll deletes name and everything
// below it. A missing name is not an error. Stores fall back to a walk that
// removes files bottom-up without it.
type RemoveAllFS interface {
	WriteFS
	RemoveAll(name string) error
}

// LinkFS is an optional upgrade: Link makes newname a hard link to the file
// oldname (zero-copy import). An existing newname is an error wrapping
// [fs.ErrExist]; parent directories of newname are created as needed.
type LinkFS interface {
	WriteFS
	Link(oldname, newname string) error
}

// ChtimesFS is an optional upgrade: Chtimes sets the modification time of a
// file. It exists for tests of age-based tools (garbage-collection grace
// windows, upload purging).
type ChtimesFS interface {
	WriteFS
	Chtimes(name string, mtime time.Time) error
}

// WalkFS is an optional read-side upgrade for backends that list a whole
// subtree at once, as an object store's flat listing does. WalkFiles calls
// fn for every file below dir (not for directories), with its path and
// FileInfo, in byte order of the paths; fn may return [fs.SkipAll] to stop.
// A missing dir has no files. Whole-tree iterators, garbage collection and
// the integrity check use it when present.
type WalkFS interface {
	fs.FS
	WalkFiles(dir string, fn func(name string, info fs.FileInfo) error) error
}

// WalkFiles calls fn for every file below dir, through the backend's
// WalkFiles when it has one and [fs.WalkDir] otherwise. A missing dir has no
// files; fn may return fs.SkipAll to stop.
func WalkFiles(fsys fs.FS, dir string, fn func(name string, info fs.FileInfo) error) error {
	if w, ok := fsys.(WalkFS); ok {
		return w.WalkFiles(dir, fn)
	}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
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
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since it was listed
		}
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

// checkPath reports whether name is a path a writer may create or change.
func checkPath(op, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Rename moves oldname to newname with the backend's Rename when it has one,
// and otherwise by copying through a FileWriter and removing oldname.
func Rename(w WriteFS, oldname, newname string) error {
	if r, ok := w.(RenameFS); ok {
		return r.Rename(oldname, newname)
	}
	src, err := w.Open(oldname)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := WriteFile(w, newname, src); err != nil {
		return err
	}
	return w.Remove(oldname)
}

// WriteFile publishes everything r yields at name.
func WriteFile(w WriteFS, name string, r io.Reader) error {
	fw, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, r); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	return fw.Commit()
}

// RemoveAll deletes name and everything below it, with the backend's
// RemoveAll when it has one. A missing name is not an error.
func RemoveAll(w WriteFS, name string) error {
	if r, ok := w.(RemoveAllFS); ok {
		return r.RemoveAll(name)
	}
	fi, err := fs.Stat(w, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := fs.ReadDir(w, name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := RemoveAll(w, path.Join(name, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := w.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ContentMD5 is an optional upgrade of the value a backend's
// [fs.FileInfo].Sys returns: the MD5 of the file's content when the backend
// knows it without reading the file, as an object store's listing does
// (the ETag of an object written in one piece). Garbage collection uses it
// to learn a link's target from a listing: a link's content is exactly the
// digest string, so its MD5 names it among the candidates. ok is false when
// the MD5 is unknown.
type ContentMD5 interface {
	ContentMD5() (sum [16]byte, ok bool)
}

// BatchFS is an optional upgrade for bulk writers (imports, copies) that
// publish many names in phases, where nothing of one phase points at
// anything of the same phase: Batch returns a [WriteBatch], which makes a
// whole phase durable with one barrier instead of one (or two) fsyncs per
// name. Writers without it publish name by name.
type BatchFS interface {
	WriteFS
	Batch() (WriteBatch, error)
}

// WriteBatch stages writes and publishes them together. It is a [WriteFS]
// onto the same tree (reads and Remove go straight to the backend), with
// these differences:
//
//   - Create's Commit, Link and Rename only stage: the content (or the
//     linked or renamed file) is complete under a temporary name, and
//     nothing is visible at the final name, through the batch's own reads
//     too, until Publish. Parent directories are created at once.
//   - Publish first makes durable everything staged so far (content and
//     temporary names) and every name published by earlier calls, in one
//     barrier; then it publishes the staged names, each by an atomic rename
//     of a complete file. So a name never appears, after a crash either,
//     before the content under it is durable, and the names of one Publish
//     are durable before any name of the next one appears: a pointer
//     published by a later Publish than its target never outlives it.
//   - Sync makes the names published so far durable; a writer calls it last.
//   - Close discards what is staged and not published (its temporary files)
//     and releases the batch. It does not sync.
//
// A crash leaves, besides complete files under their final names, at most
// temporary files, which readers of the layout ignore. The names of one
// Publish may survive a crash in any subset: only what several Publish calls
// order is ordered.
type WriteBatch interface {
	WriteFS
	Link(oldname, newname string) error
	Rename(oldname, newname string) error
	Publish() error
	Sync() error
	Close() error
}

package retain

import (
	"io/fs"
	"path"
	"strings"

	"github.com/regstore/regstore"
)

// untagged is a read-only view of a backend in which some tag directories
// (repositories/<repo>/_manifests/tags/<tag>) do not exist: the tree as it
// is after those tags are deleted, which is all a prune changes. Everything
// else reads through to the backend. [gc.Mark] on it is the plan of the
// collection that follows the prune.
type untagged struct {
	fsys   fs.FS
	hidden map[string]bool // tag directories
}

// untaggedWalk is an untagged view of a backend with a flat listing.
type untaggedWalk struct{ *untagged }

// hideTags returns the view of fsys without the tag directories dirs.
func hideTags(fsys fs.FS, dirs []string) fs.FS {
	u := &untagged{fsys: fsys, hidden: make(map[string]bool, len(dirs))}
	for _, d := range dirs {
		u.hidden[d] = true
	}
	if _, ok := fsys.(regstore.WalkFS); ok {
		return untaggedWalk{u}
	}
	return u
}

const tagsMark = "/_manifests/tags/"

// isHidden reports whether name is a hidden tag directory or below one.
// Repository path components cannot start with "_", so the first
// "/_manifests/tags/" in a path is the repository's.
func (u *untagged) isHidden(name string) bool {
	i := strings.Index(name, tagsMark)
	if i < 0 {
		return false
	}
	end := i + len(tagsMark)
	if j := strings.IndexByte(name[end:], '/'); j >= 0 {
		end += j
	} else {
		end = len(name)
	}
	return u.hidden[name[:end]]
}

func (u *untagged) notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (u *untagged) Open(name string) (fs.File, error) {
	if u.isHidden(name) {
		return nil, u.notExist("open", name)
	}
	f, err := u.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if d, ok := f.(fs.ReadDirFile); ok && strings.HasSuffix(name, "/_manifests/tags") {
		return &filteredDir{ReadDirFile: d, u: u, dir: name}, nil
	}
	return f, nil
}

func (u *untagged) Stat(name string) (fs.FileInfo, error) {
	if u.isHidden(name) {
		return nil, u.notExist("stat", name)
	}
	return fs.Stat(u.fsys, name)
}

func (u *untagged) ReadFile(name string) ([]byte, error) {
	if u.isHidden(name) {
		return nil, u.notExist("readfile", name)
	}
	return fs.ReadFile(u.fsys, name)
}

func (u *untagged) ReadDir(name string) ([]fs.DirEntry, error) {
	if u.isHidden(name) {
		return nil, u.notExist("readdir", name)
	}
	entries, err := fs.ReadDir(u.fsys, name)
	if err != nil || !strings.HasSuffix(name, "/_manifests/tags") {
		return entries, err
	}
	return u.filter(name, entries), nil
}

func (u *untagged) filter(dir string, entries []fs.DirEntry) []fs.DirEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if !u.hidden[path.Join(dir, e.Name())] {
			out = append(out, e)
		}
	}
	return out
}

// WalkFiles lists through the backend's flat listing, leaving out what is
// hidden.
func (u untaggedWalk) WalkFiles(dir string, fn func(string, fs.FileInfo) error) error {
	if u.isHidden(dir) {
		return nil
	}
	return u.fsys.(regstore.WalkFS).WalkFiles(dir, func(name string, fi fs.FileInfo) error {
		if u.isHidden(name) {
			return nil
		}
		return fn(name, fi)
	})
}

// filteredDir is an opened tags directory whose listing leaves out the
// hidden tags.
type filteredDir struct {
	fs.ReadDirFile
	u   *untagged
	dir string
}

func (d *filteredDir) ReadDir(n int) ([]fs.DirEntry, error) {
	for {
		entries, err := d.ReadDirFile.ReadDir(n)
		out := d.u.filter(d.dir, entries)
		if len(out) > 0 || err != nil || n <= 0 || len(entries) == 0 {
			return out, err
		}
	}
}

var (
	_ fs.StatFS       = (*untagged)(nil)
	_ fs.ReadDirFS    = (*untagged)(nil)
	_ fs.ReadFileFS   = (*untagged)(nil)
	_ regstore.WalkFS = untaggedWalk{}
)

package regstore

import (
	"bytes"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory backend that behaves like [Dir]: directories exist
// only when created (Create and Rename make the parents of their target, as
// Dir does), Commit replaces a file atomically, Remove refuses non-empty
// directories, ReadDir is sorted, a file being written shows as an empty
// temporary sibling "<name>.<random>.tmp" until Commit or Cancel, and errors
// carry the same [io/fs] classes as the operating system's. It is safe for
// concurrent use.
//
// The zero value is not usable; call [NewMemFS].
type MemFS struct {
	mu   sync.RWMutex
	root *memNode
	now  func() time.Time
}

type memNode struct {
	name     string
	dir      bool
	children map[string]*memNode // dir only
	data     []byte              // file only; never modified once committed
	mtime    time.Time
}

var (
	_ WriteFS       = (*MemFS)(nil)
	_ RenameFS      = (*MemFS)(nil)
	_ RemoveAllFS   = (*MemFS)(nil)
	_ LinkFS        = (*MemFS)(nil)
	_ ChtimesFS     = (*MemFS)(nil)
	_ fs.StatFS     = (*MemFS)(nil)
	_ fs.ReadDirFS  = (*MemFS)(nil)
	_ fs.ReadFileFS = (*MemFS)(nil)
)

// NewMemFS returns an empty in-memory backend.
func NewMemFS() *MemFS {
	return &MemFS{root: newMemDir(".", time.Now()), now: time.Now}
}

func newMemDir(name string, t time.Time) *memNode {
	return &memNode{name: name, dir: true, children: map[string]*memNode{}, mtime: t}
}

// lookup finds name; the error is an errno with the operating system's class.
func (m *MemFS) lookup(name string) (*memNode, error) {
	n := m.root
	if name == "." {
		return n, nil
	}
	for c := range strings.SplitSeq(name, "/") {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		next, ok := n.children[c]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = next
	}
	return n, nil
}

// mkdirAll creates dir and its parents, as os.MkdirAll does.
func (m *MemFS) mkdirAll(dir string) (*memNode, error) {
	n := m.root
	if dir == "." {
		return n, nil
	}
	for c := range strings.SplitSeq(dir, "/") {
		next, ok := n.children[c]
		if !ok {
			next = newMemDir(c, m.now())
			n.children[c] = next
		}
		if !next.dir {
			return nil, syscall.ENOTDIR
		}
		n = next
	}
	return n, nil
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens a file or directory for reading.
func (m *MemFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("open", name, fs.ErrInvalid)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if n.dir {
		return &memDir{info: n.info(), entries: n.entries(), path: name}, nil
	}
	return &memFile{info: n.info(), Reader: bytes.NewReader(n.data)}, nil
}

// Stat describes a file or directory.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("stat", name, fs.ErrInvalid)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return n.info(), nil
}

// ReadFile returns a copy of a file's content.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("read", name, fs.ErrInvalid)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	if n.dir {
		return nil, pathErr("read", name, syscall.EISDIR)
	}
	return slices.Clone(n.data), nil
}

// ReadDir lists a directory, sorted by name.
func (m *MemFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("readdir", name, fs.ErrInvalid)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	if !n.dir {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	return n.entries(), nil
}

// Create starts a new version of the file name.
func (m *MemFS) Create(name string) (FileWriter, error) {
	if err := checkPath("create", name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var made []string
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if _, err := m.lookup(dir); err == nil {
			break
		}
		made = append(made, dir)
	}
	parent, err := m.mkdirAll(path.Dir(name))
	if err != nil {
		return nil, pathErr("create", name, err)
	}
	tmp := tempName(name)
	parent.children[path.Base(tmp)] = &memNode{name: path.Base(tmp), mtime: m.now()}
	return &memWriter{m: m, name: name, tmp: tmp, made: made}, nil
}

// Remove deletes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	if err := checkPath("remove", name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return pathErr("remove", name, err)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	parent, _ := m.lookup(path.Dir(name))
	delete(parent.children, n.name)
	return nil
}

// RemoveAll deletes name and everything below it.
func (m *MemFS) RemoveAll(name string) error {
	if err := checkPath("removeall", name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, err := m.lookup(path.Dir(name))
	if err != nil || !parent.dir {
		return nil
	}
	delete(parent.children, path.Base(name))
	return nil
}

// Rename moves oldname to newname atomically, replacing a file there.
func (m *MemFS) Rename(oldname, newname string) error {
	if err := checkPath("rename", oldname); err != nil {
		return err
	}
	if err := checkPath("rename", newname); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(oldname)
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	if oldname == newname {
		return nil
	}
	if strings.HasPrefix(newname, oldname+"/") {
		return pathErr("rename", newname, syscall.EINVAL)
	}
	parent, err := m.mkdirAll(path.Dir(newname))
	if err != nil {
		return pathErr("rename", newname, err)
	}
	if old, ok := parent.children[path.Base(newname)]; ok {
		switch {
		case old.dir && !n.dir:
			return pathErr("rename", newname, syscall.EEXIST)
		case !old.dir && n.dir:
			return pathErr("rename", newname, syscall.ENOTDIR)
		case old.dir && len(old.children) > 0:
			return pathErr("rename", newname, syscall.ENOTEMPTY)
		}
	}
	oldParent, _ := m.lookup(path.Dir(oldname))
	delete(oldParent.children, n.name)
	n.name = path.Base(newname)
	parent.children[n.name] = n
	return nil
}

// Link makes newname share oldname's content.
func (m *MemFS) Link(oldname, newname string) error {
	if err := checkPath("link", oldname); err != nil {
		return err
	}
	if err := checkPath("link", newname); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(oldname)
	if err != nil {
		return pathErr("link", oldname, err)
	}
	if n.dir {
		return pathErr("link", oldname, syscall.EPERM)
	}
	parent, err := m.mkdirAll(path.Dir(newname))
	if err != nil {
		return pathErr("link", newname, err)
	}
	if _, ok := parent.children[path.Base(newname)]; ok {
		return pathErr("link", newname, syscall.EEXIST)
	}
	// Content is immutable once committed, so sharing the slice is a link.
	parent.children[path.Base(newname)] = &memNode{name: path.Base(newname), data: n.data, mtime: n.mtime}
	return nil
}

// Chtimes sets the modification time of name.
func (m *MemFS) Chtimes(name string, mtime time.Time) error {
	if err := checkPath("chtimes", name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return pathErr("chtimes", name, err)
	}
	n.mtime = mtime
	return nil
}

type memWriter struct {
	m         *MemFS
	name, tmp string
	made      []string // directories Create made, deepest first
	buf       bytes.Buffer
	done      bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, pathErr("write", w.name, fs.ErrClosed)
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit() error {
	if w.done {
		return pathErr("commit", w.name, fs.ErrClosed)
	}
	w.done = true
	m := w.m
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, err := m.lookup(path.Dir(w.name))
	if err != nil {
		return pathErr("rename", w.name, err)
	}
	base := path.Base(w.name)
	if old, ok := parent.children[base]; ok && old.dir {
		w.discard()
		return pathErr("rename", w.name, syscall.EEXIST)
	}
	delete(parent.children, path.Base(w.tmp))
	parent.children[base] = &memNode{name: base, data: w.buf.Bytes(), mtime: m.now()}
	return nil
}

func (w *memWriter) Cancel() error {
	if w.done {
		return pathErr("cancel", w.name, fs.ErrClosed)
	}
	w.done = true
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.discard()
	return nil
}

// discard removes the temporary file and the directories Create made, as
// Dir does; the caller holds the lock.
func (w *memWriter) discard() {
	w.buf = bytes.Buffer{}
	if parent, err := w.m.lookup(path.Dir(w.tmp)); err == nil {
		delete(parent.children, path.Base(w.tmp))
	}
	for _, dir := range w.made {
		n, err := w.m.lookup(dir)
		if err != nil || !n.dir || len(n.children) > 0 {
			return
		}
		parent, _ := w.m.lookup(path.Dir(dir))
		delete(parent.children, n.name)
	}
}

func (n *memNode) info() *memInfo {
	return &memInfo{name: n.name, dir: n.dir, size: int64(len(n.data)), mtime: n.mtime}
}

func (n *memNode) entries() []fs.DirEntry {
	names := slices.Sorted(maps.Keys(n.children))
	out := make([]fs.DirEntry, len(names))
	for i, name := range names {
		out[i] = fs.FileInfoToDirEntry(n.children[name].info())
	}
	return out
}

type memInfo struct {
	name  string
	dir   bool
	size  int64
	mtime time.Time
}

func (i *memInfo) Name() string       { return i.name }
func (i *memInfo) Size() int64        { return i.size }
func (i *memInfo) ModTime() time.Time { return i.mtime }
func (i *memInfo) IsDir() bool        { return i.dir }
func (i *memInfo) Sys() any           { return nil }
func (i *memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

type memFile struct {
	info *memInfo
	*bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	info    *memInfo
	path    string
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *memDir) Close() error               { return nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, pathErr("read", d.path, syscall.EISDIR)
}

func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

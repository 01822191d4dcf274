package regstore

import (
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dir is the backend for a directory of the operating system, opened with
// [os.Root]: no name, ".." or symbolic link can reach outside it.
//
// A file is written to a temporary sibling "<name>.<random>.tmp", created
// exclusively, then synced, renamed over name, and the directory synced, so
// a crash leaves either the old file or the new one, plus at worst a
// temporary file that readers of the layout ignore. Files are created with
// mode 0666 and directories with 0777, less the umask, as the registry does.
type Dir struct {
	root *os.Root
	fsys fs.FS
	fast *beneath // reads in one system call where the kernel can
	// owner, if set, is given to what the Dir creates (dir_owner.go).
	owner *owner

	// batchTrace, set by tests, sees the steps of every batch in order:
	// ("stage", name), ("barrier", ""), ("publish", name).
	batchTrace func(event, name string)
}

var (
	_ WriteFS       = (*Dir)(nil)
	_ RenameFS      = (*Dir)(nil)
	_ RemoveAllFS   = (*Dir)(nil)
	_ LinkFS        = (*Dir)(nil)
	_ ChtimesFS     = (*Dir)(nil)
	_ BatchFS       = (*Dir)(nil)
	_ WriteBatch    = (*dirBatch)(nil)
	_ fs.StatFS     = (*Dir)(nil)
	_ fs.ReadDirFS  = (*Dir)(nil)
	_ fs.ReadFileFS = (*Dir)(nil)
)

// OpenDir opens the directory dir as a backend. The caller must Close it.
func OpenDir(dir string) (*Dir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Dir{root: root, fsys: root.FS(), fast: newBeneath(dir), owner: ownerFor(dir)}, nil
}

// FindLayout locates the storage layout of the registry rootdirectory
// root (the folder holding docker/, or the docker/registry/v2 folder
// itself) and returns the directory to open with [OpenDir] and the layout
// root to give [WithLayoutRoot].
//
// Symbolic links above the layout root are the operator's choice (docker/
// on another disk is a common set-up) and are resolved here: when docker,
// docker/registry or docker/registry/v2 is a symbolic link, dir is the
// resolved path of the deepest of them that exists, and layoutRoot the
// rest of the way. Symbolic links inside the layout stay refused by the
// Dir. Without any, dir is root and layoutRoot [DefaultLayoutRoot] (or "."
// when root holds repositories/ or blobs/ and no docker/registry/v2).
func FindLayout(root string) (dir, layoutRoot string, err error) {
	parts := strings.Split(DefaultLayoutRoot, "/")
	cur, linked, n := root, false, 0
	for _, part := range parts {
		p := filepath.Join(cur, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			linked = true
		}
		cur, n = p, n+1
	}
	if n == 0 && (exists(filepath.Join(root, "repositories")) || exists(filepath.Join(root, "blobs"))) {
		return root, ".", nil
	}
	if !linked {
		return root, DefaultLayoutRoot, nil
	}
	resolved, err := filepath.EvalSymlinks(cur)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", "", err
	}
	if !fi.IsDir() {
		return "", "", &fs.PathError{Op: "open", Path: cur, Err: syscall.ENOTDIR}
	}
	rest := path.Join(parts[n:]...)
	if rest == "" {
		rest = "."
	}
	return resolved, rest, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Name is the directory the backend was opened on.
func (d *Dir) Name() string { return d.root.Name() }

// Close releases the directory.
func (d *Dir) Close() error {
	d.fast.close()
	return d.root.Close()
}

// Open opens a file for reading.
func (d *Dir) Open(name string) (fs.File, error) {
	if f, ok, err := d.fastOpen(name); ok {
		return f, err
	}
	return d.rootOpen(name)
}

// rootOpen opens name through os.Root for reading, without blocking on a
// named pipe: it opens with O_NONBLOCK where the system has it, and
// refuses anything but a regular file or a directory with an error
// wrapping [ErrNotRegular]. (O_NONBLOCK stays set: it means nothing to a
// regular file's reads.)
func (d *Dir) rootOpen(name string) (*os.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, notRegular("open", name, fi.Mode())
	}
	return f, nil
}

// Stat describes a file.
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	if fi, ok, err := d.fastStat(name); ok {
		return fi, err
	}
	return fs.Stat(d.fsys, name)
}

// ReadFile reads a whole file.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	if b, ok, err := d.fast.readFile(name, 0); ok {
		return b, err
	}
	f, err := d.rootOpen(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	return io.ReadAll(f)
}

// ReadDir lists a directory, sorted by name.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	if entries, ok, err := d.fastReadDir(name); ok {
		return entries, err
	}
	return fs.ReadDir(d.fsys, name)
}

// Create starts a new version of the file name.
func (d *Dir) Create(name string) (FileWriter, error) {
	if err := checkPath("create", name); err != nil {
		return nil, err
	}
	tmp := tempName(name)
	var made []string
	var f *os.File
	var err error
	// A writer that fails removes the directories it made while they are
	// empty, and may do so just after this one found them present: a
	// directory missing again (ENOENT) is made again.
	for range 3 {
		made = d.missingDirs(path.Dir(name))
		if err = d.root.MkdirAll(path.Dir(name), 0o777); err == nil {
			if err = d.ownDirs(made); err == nil {
				f, err = d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err == nil {
		if err = d.ownFile(f); err != nil {
			f.Close()
			d.root.Remove(tmp)
		}
	}
	if err != nil {
		d.removeDirs(made)
		return nil, err
	}
	return &dirWriter{d: d, f: f, name: name, tmp: tmp, made: made}, nil
}

// tempName is the name of the temporary sibling a write goes to first.
func tempName(name string) string { return name + "." + rand.Text() + ".tmp" }

// missingDirs lists dir and those of its parents that do not exist yet,
// deepest first.
func (d *Dir) missingDirs(dir string) []string {
	var out []string
	for ; dir != "."; dir = path.Dir(dir) {
		if _, err := d.root.Lstat(dir); err == nil {
			break
		}
		out = append(out, dir)
	}
	return out
}

// removeDirs removes directories deepest first and stops at the first one
// that cannot go (because another writer has put something in it).
func (d *Dir) removeDirs(dirs []string) {
	for _, dir := range dirs {
		if d.root.Remove(dir) != nil {
			return
		}
	}
}

// Remove deletes a file or an empty directory.
func (d *Dir) Remove(name string) error {
	if err := checkPath("remove", name); err != nil {
		return err
	}
	return d.root.Remove(name)
}

// RemoveAll deletes name and everything below it.
func (d *Dir) RemoveAll(name string) error {
	if err := checkPath("removeall", name); err != nil {
		return err
	}
	return d.root.RemoveAll(name)
}

// Rename moves oldname to newname atomically, replacing a file there.
func (d *Dir) Rename(oldname, newname string) error {
	if err := checkPath("rename", oldname); err != nil {
		return err
	}
	if err := checkPath("rename", newname); err != nil {
		return err
	}
	if _, err := d.root.Lstat(oldname); err != nil {
		return err
	}
	made := d.missingDirs(path.Dir(newname))
	if err := d.root.MkdirAll(path.Dir(newname), 0o777); err != nil {
		return err
	}
	if err := d.ownDirs(made); err != nil {
		return err
	}
	if err := d.root.Rename(oldname, newname); err != nil {
		return err
	}
	return d.syncDir(path.Dir(newname))
}

// Link makes newname a hard link to oldname.
func (d *Dir) Link(oldname, newname string) error {
	if err := checkPath("link", oldname); err != nil {
		return err
	}
	if err := checkPath("link", newname); err != nil {
		return err
	}
	if _, err := d.root.Lstat(oldname); err != nil {
		return err
	}
	made := d.missingDirs(path.Dir(newname))
	if err := d.root.MkdirAll(path.Dir(newname), 0o777); err != nil {
		return err
	}
	if err := d.ownDirs(made); err != nil {
		return err
	}
	return d.root.Link(oldname, newname)
}

// Chtimes sets the modification (and access) time of name.
func (d *Dir) Chtimes(name string, mtime time.Time) error {
	if err := checkPath("chtimes", name); err != nil {
		return err
	}
	return d.root.Chtimes(name, mtime, mtime)
}

func (d *Dir) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

type dirWriter struct {
	d         *Dir
	f         *os.File
	name, tmp string
	made      []string // directories Create made
}

func (w *dirWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *dirWriter) Commit() error {
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	if err := w.f.Close(); err != nil {
		return w.fail(err)
	}
	if err := w.d.root.Rename(w.tmp, w.name); err != nil {
		return w.fail(err)
	}
	return w.d.syncDir(path.Dir(w.name))
}

func (w *dirWriter) Cancel() error { return w.fail(nil) }

// fail discards the temporary file and the directories Create made.
func (w *dirWriter) fail(err error) error {
	w.f.Close()
	err = errors.Join(err, w.d.root.Remove(w.tmp))
	w.d.removeDirs(w.made)
	return err
}

// Batch returns a [WriteBatch] on the directory. Its barrier is one
// syncfs(2) of the filesystem on Linux (which also writes back other dirty
// files of that filesystem, other processes' included), and elsewhere, or
// where syncfs is unavailable, an fsync of every staged file and of every
// directory a name was published in since the last barrier.
//
// Staging writes a file to a temporary sibling of its name, as Create
// does, or makes the hard link there, but syncs nothing; Rename stages the
// file under its current name. Publish is the barrier, then a rename of
// every staged file to its name. The reasoning for crashes: a staged file
// is complete in memory when it is staged (its writer closed, or a hard
// link to a complete file), the barrier makes its content durable, and only
// then does a rename give it its name, so a name survives a crash only with
// all of its content (a rename without a prior sync could survive with an
// empty or partial file: ext4's delayed allocation commits a new name before
// the data). Names published by one Publish become durable in the barrier
// of the next Publish, or of Sync, before any later name appears.
func (d *Dir) Batch() (WriteBatch, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return nil, err
	}
	return &dirBatch{d: d, rootFile: f, dirs: map[string]bool{}}, nil
}

// dirBatch is the [WriteBatch] of a [Dir].
type dirBatch struct {
	d        *Dir
	rootFile *os.File // for syncfs

	mu      sync.Mutex
	staged  []stagedName
	dirs    map[string]bool // directories known to exist
	touched map[string]bool // directories of names published since the last barrier
	closed  bool
}

// stagedName is a complete file at tmp, to be renamed to name.
type stagedName struct{ tmp, name string }

// knownDir reports whether dir is known to exist.
func (b *dirBatch) knownDir(dir string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return dir == "." || b.dirs[dir]
}

// mkdirAll creates dir and its parents as needed, returning those it
// created, deepest first.
func (b *dirBatch) mkdirAll(dir string) ([]string, error) {
	if b.knownDir(dir) {
		return nil, nil
	}
	made, ok, err := b.d.fastMkdirAll(dir)
	if !ok {
		made = b.d.missingDirs(dir)
		err = b.d.root.MkdirAll(dir, 0o777)
	}
	if err == nil {
		err = b.d.ownDirs(made)
	}
	if err != nil {
		b.d.removeDirs(made)
		return nil, err
	}
	b.mu.Lock()
	for p := dir; p != "."; p = path.Dir(p) {
		b.dirs[p] = true
	}
	b.mu.Unlock()
	return made, nil
}

// forget drops dirs from the directories known to exist.
func (b *dirBatch) forget(dirs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range dirs {
		delete(b.dirs, d)
	}
}

func (b *dirBatch) stage(tmp, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return &fs.PathError{Op: "stage", Path: name, Err: fs.ErrClosed}
	}
	b.staged = append(b.staged, stagedName{tmp, name})
	b.trace("stage", name)
	return nil
}

func (b *dirBatch) Open(name string) (fs.File, error)          { return b.d.Open(name) }
func (b *dirBatch) Stat(name string) (fs.FileInfo, error)      { return b.d.Stat(name) }
func (b *dirBatch) ReadFile(name string) ([]byte, error)       { return b.d.ReadFile(name) }
func (b *dirBatch) ReadDir(name string) ([]fs.DirEntry, error) { return b.d.ReadDir(name) }
func (b *dirBatch) Remove(name string) error                   { return b.d.Remove(name) }

// Create starts a file that Commit stages.
func (b *dirBatch) Create(name string) (FileWriter, error) {
	if err := checkPath("create", name); err != nil {
		return nil, err
	}
	dir := path.Dir(name)
	made, err := b.mkdirAll(dir)
	if err != nil {
		return nil, err
	}
	tmp := tempName(name)
	f, err := b.d.createExcl(tmp)
	if errors.Is(err, fs.ErrNotExist) && made == nil {
		// A directory known to exist was removed since (by garbage
		// collection, say): make it again.
		b.forget(dir)
		if made, err = b.mkdirAll(dir); err == nil {
			f, err = b.d.createExcl(tmp)
		}
	}
	if err != nil {
		b.d.removeDirs(made)
		return nil, err
	}
	return &batchWriter{b: b, f: f, name: name, tmp: tmp, made: made}, nil
}

// Link stages newname as a hard link to oldname.
func (b *dirBatch) Link(oldname, newname string) error {
	if err := checkPath("link", oldname); err != nil {
		return err
	}
	if err := checkPath("link", newname); err != nil {
		return err
	}
	made, err := b.mkdirAll(path.Dir(newname))
	if err != nil {
		return err
	}
	tmp := tempName(newname)
	if err := b.d.link(oldname, tmp); err != nil {
		b.forget(made...)
		b.d.removeDirs(made)
		return err
	}
	if err := b.stage(tmp, newname); err != nil {
		return errors.Join(err, b.d.root.Remove(tmp))
	}
	return nil
}

// Rename stages moving oldname to newname.
func (b *dirBatch) Rename(oldname, newname string) error {
	if err := checkPath("rename", oldname); err != nil {
		return err
	}
	if err := checkPath("rename", newname); err != nil {
		return err
	}
	if _, err := b.d.lstat(oldname); err != nil {
		return err
	}
	if _, err := b.mkdirAll(path.Dir(newname)); err != nil {
		return err
	}
	return b.stage(oldname, newname)
}

// Publish makes everything staged, and the names published before, durable,
// then renames the staged files to their names.
func (b *dirBatch) Publish() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return &fs.PathError{Op: "publish", Path: ".", Err: fs.ErrClosed}
	}
	staged := b.staged
	b.staged = nil
	if err := b.barrier(staged); err != nil {
		b.staged = staged
		return err
	}
	b.trace("barrier", "")
	if b.touched == nil {
		b.touched = map[string]bool{}
	}
	for i, s := range staged {
		if err := b.d.renameInRoot(s.tmp, s.name); err != nil {
			b.staged = staged[i:]
			return err
		}
		b.touched[path.Dir(s.name)] = true
		b.trace("publish", s.name)
	}
	return nil
}

func (b *dirBatch) trace(event, name string) {
	if b.d.batchTrace != nil {
		b.d.batchTrace(event, name)
	}
}

// Sync makes the names published so far durable.
func (b *dirBatch) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return &fs.PathError{Op: "sync", Path: ".", Err: fs.ErrClosed}
	}
	if len(b.touched) == 0 {
		return nil
	}
	if err := b.barrier(nil); err != nil {
		return err
	}
	b.trace("barrier", "")
	return nil
}

// barrier makes the staged files and the names published since the last
// barrier durable. b.mu is held.
func (b *dirBatch) barrier(staged []stagedName) error {
	if ok, err := syncFS(b.rootFile); ok {
		if err != nil {
			return &fs.PathError{Op: "syncfs", Path: b.d.Name(), Err: err}
		}
		b.touched = nil
		return nil
	}
	for _, s := range staged {
		if err := b.d.syncFile(s.tmp); err != nil {
			return err
		}
	}
	for dir := range b.touched {
		if err := b.d.syncDir(dir); err != nil {
			return err
		}
	}
	b.touched = nil
	return nil
}

// Close removes the temporary files of what is staged and not published.
func (b *dirBatch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	for _, s := range b.staged {
		if err := b.d.root.Remove(s.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	b.staged = nil
	errs = append(errs, b.rootFile.Close())
	return errors.Join(errs...)
}

// batchWriter is a FileWriter of a dirBatch.
type batchWriter struct {
	b         *dirBatch
	f         *os.File
	name, tmp string
	made      []string
}

func (w *batchWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *batchWriter) Commit() error {
	if err := w.f.Close(); err != nil {
		return w.fail(err)
	}
	if err := w.b.stage(w.tmp, w.name); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *batchWriter) Cancel() error { return w.fail(nil) }

func (w *batchWriter) fail(err error) error {
	w.f.Close()
	err = errors.Join(err, w.b.d.root.Remove(w.tmp))
	w.b.forget(w.made...)
	w.b.d.removeDirs(w.made)
	return err
}

// createExcl creates name exclusively, for writing.
func (d *Dir) createExcl(name string) (*os.File, error) {
	f, ok, err := d.fastCreateExcl(name)
	if !ok {
		f, err = d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	}
	if err == nil {
		if err = d.ownFile(f); err != nil {
			f.Close()
			d.root.Remove(name)
			return nil, err
		}
	}
	return f, err
}

// renameInRoot renames oldname to newname, whose directory exists.
func (d *Dir) renameInRoot(oldname, newname string) error {
	if ok, err := d.fastRename(oldname, newname); ok {
		return err
	}
	return d.root.Rename(oldname, newname)
}

// link makes newname, whose directory exists, a hard link to oldname.
func (d *Dir) link(oldname, newname string) error {
	if ok, err := d.fastLink(oldname, newname); ok {
		return err
	}
	return d.root.Link(oldname, newname)
}

// lstat describes name without following a final symbolic link.
func (d *Dir) lstat(name string) (fs.FileInfo, error) {
	if fi, ok, err := d.fastLstat(name); ok {
		return fi, err
	}
	return d.root.Lstat(name)
}

func (d *Dir) syncFile(name string) error {
	f, err := d.root.Open(name)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

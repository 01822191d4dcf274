package regstore

import (
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
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
}

var (
	_ WriteFS       = (*Dir)(nil)
	_ RenameFS      = (*Dir)(nil)
	_ RemoveAllFS   = (*Dir)(nil)
	_ LinkFS        = (*Dir)(nil)
	_ ChtimesFS     = (*Dir)(nil)
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
	return &Dir{root: root, fsys: root.FS(), fast: newBeneath(dir)}, nil
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
	return d.fsys.Open(name)
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
	if f, ok, err := d.fastOpen(name); ok {
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	return fs.ReadFile(d.fsys, name)
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
	made := d.missingDirs(path.Dir(name))
	if err := d.root.MkdirAll(path.Dir(name), 0o777); err != nil {
		return nil, err
	}
	tmp := tempName(name)
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
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
	if err := d.root.MkdirAll(path.Dir(newname), 0o777); err != nil {
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
	if err := d.root.MkdirAll(path.Dir(newname), 0o777); err != nil {
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

//go:build linux

package regstore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// beneath opens paths below a directory with one openat2(2) call and
// RESOLVE_BENEATH, which the kernel resolves without letting "..", an
// absolute path or a symbolic link leave the directory: the guarantee of
// os.Root, which instead opens and closes every component of the path
// (golang/go#73077). Whenever openat2 cannot decide (no openat2 before Linux
// 5.6 or under a seccomp filter, a path that would escape, a symlink loop),
// the caller falls back to os.Root, which then gives its own answer.
type beneath struct {
	fd       int // O_PATH descriptor of the directory, -1 if none
	disabled atomic.Bool
}

const oPath = unix.O_PATH

func newBeneath(dir string) *beneath {
	fd, err := unix.Open(dir, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	b := &beneath{fd: fd}
	b.disabled.Store(fd < 0)
	return b
}

func (b *beneath) close() {
	if b.fd >= 0 {
		unix.Close(b.fd)
	}
}

// open returns ok=false when os.Root must answer instead.
func (b *beneath) open(op, name string, flags int) (f *os.File, ok bool, err error) {
	return b.openAs(op, name, name, flags)
}

// openAs is open, naming the *os.File fileName.
func (b *beneath) openAs(op, name, fileName string, flags int) (f *os.File, ok bool, err error) {
	fd, ok, err := b.openFD(op, name, flags, 0)
	if !ok || err != nil {
		return nil, ok, err
	}
	return os.NewFile(uintptr(fd), fileName), true, nil
}

// openFD is open, returning the descriptor; mode is for O_CREAT. The
// errors it reports (with ok) are those the kernel gives for the name
// itself: ENOENT, ENOTDIR, EACCES, EISDIR, and EEXIST.
func (b *beneath) openFD(op, name string, flags int, mode uint32) (fd int, ok bool, err error) {
	if b.disabled.Load() || !fs.ValidPath(name) {
		return -1, false, nil
	}
	if strings.IndexByte(name, 0) >= 0 {
		return -1, false, nil
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(b.fd, name, &how)
		switch err {
		case nil:
			return fd, true, nil
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.ENOSYS, unix.EPERM, unix.E2BIG, unix.EINVAL:
			b.disabled.Store(true)
			return -1, false, nil
		case unix.EXDEV, unix.ELOOP:
			return -1, false, nil
		case unix.ENOENT, unix.ENOTDIR, unix.EACCES, unix.EISDIR, unix.EEXIST:
			return -1, true, &fs.PathError{Op: op, Path: name, Err: err}
		default:
			return -1, false, nil
		}
	}
}

// openRead opens name beneath the root for reading, without blocking: it
// opens with O_NONBLOCK (opening a FIFO for reading otherwise waits for a
// writer), checks the type with fstat, refuses anything that is neither a
// regular file nor a directory with an error wrapping [ErrNotRegular], and
// clears O_NONBLOCK again. st is the fstat of the open file.
func (b *beneath) openRead(name string) (fd int, st unix.Stat_t, ok bool, err error) {
	fd, ok, err = b.openFD("open", name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if !ok || err != nil {
		return -1, st, ok, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, false, nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		// O_NONBLOCK means nothing to a regular file's reads: leave it,
		// saving two fcntl calls; os.NewFile is told the truth below.
	case unix.S_IFDIR:
	default:
		unix.Close(fd)
		return -1, st, true, notRegular("open", name, fileMode(st.Mode))
	}
	return fd, st, true, nil
}

// fileMode is the fs.FileMode type bits of a stat mode.
func fileMode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}

func (d *Dir) fastOpen(name string) (fs.File, bool, error) {
	fd, st, ok, err := d.fast.openRead(name)
	if !ok || err != nil {
		return nil, ok, err
	}
	// A directory is left to os.Root, whose DirEntry.Info stats relative
	// to the directory; an *os.File from os.NewFile would stat by name.
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.Close(fd)
		return nil, false, nil
	}
	// A regular file: clear O_NONBLOCK so that os.NewFile does not try to
	// register it with the poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, false, nil
	}
	return os.NewFile(uintptr(fd), name), true, nil
}

func (d *Dir) fastStat(name string) (fs.FileInfo, bool, error) {
	f, ok, err := d.fast.open("stat", name, oPath)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, nil
	}
	return fi, true, nil
}

// fastReadDir lists a directory opened beneath the root. os.Root's ReadDir
// stats every entry as it lists (its entries cannot stat lazily); these
// entries take their type from the listing and stat through os.Root only
// when Info is called.
func (d *Dir) fastReadDir(name string) ([]fs.DirEntry, bool, error) {
	// The absolute name only serves a filesystem that reports no entry
	// types, for which the listing stats each entry by its path.
	abs := filepath.Join(d.root.Name(), filepath.FromSlash(name))
	f, ok, err := d.fast.openAs("readdir", name, abs, unix.O_RDONLY|unix.O_DIRECTORY)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, false, nil // let os.Root answer
	}
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = dirEntry{DirEntry: e, d: d, path: path.Join(name, e.Name())}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, true, nil
}

type dirEntry struct {
	fs.DirEntry
	d    *Dir
	path string
}

func (e dirEntry) Info() (fs.FileInfo, error) {
	if fi, ok, err := e.d.fastLstat(e.path); ok {
		return fi, err
	}
	return e.d.root.Lstat(e.path)
}

// syncFS writes back the whole filesystem holding f, and reports whether it
// could try (false: the caller syncs file by file).
func syncFS(f *os.File) (ok bool, err error) {
	for {
		switch err := unix.Syncfs(int(f.Fd())); err {
		case nil:
			return true, nil
		case unix.EINTR:
			continue
		case unix.ENOSYS, unix.EPERM:
			return false, nil
		default:
			return true, err
		}
	}
}

// Writes beneath the root, for batches: each opens the directory of the
// name with one openat2(2) (RESOLVE_BENEATH, as reads do) and acts on the
// last component relative to it, which no *at call follows when it is a
// symbolic link (mkdirat, renameat and linkat never do; O_CREAT|O_EXCL
// fails on one). os.Root instead opens every component of both paths.
// ok=false means os.Root must act instead.

// dirFD opens the directory dir beneath the root; done closes it.
func (d *Dir) dirFD(op, dir string) (fd int, done func(), ok bool, err error) {
	if dir == "." {
		if d.fast.disabled.Load() {
			return -1, nil, false, nil
		}
		return d.fast.fd, func() {}, true, nil
	}
	fd, ok, err = d.fast.openFD(op, dir, oPath|unix.O_DIRECTORY, 0)
	if !ok || err != nil {
		return -1, nil, ok, err
	}
	return fd, func() { unix.Close(fd) }, true, nil
}

// fastMkdirAll creates dir and its missing parents, returning those it
// made, deepest first.
func (d *Dir) fastMkdirAll(dir string) (made []string, ok bool, err error) {
	if dir == "." {
		return nil, !d.fast.disabled.Load(), nil
	}
	fd, done, ok, err := d.dirFD("mkdir", dir)
	if !ok {
		return nil, false, nil
	}
	if err == nil {
		done()
		return nil, true, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return nil, true, err
	}
	parent := path.Dir(dir)
	made, ok, err = d.fastMkdirAll(parent)
	if !ok || err != nil {
		return made, ok, err
	}
	fd, done, ok, err = d.dirFD("mkdir", parent)
	if !ok || err != nil {
		return made, ok, err
	}
	defer done()
	switch err := unix.Mkdirat(fd, path.Base(dir), 0o777); err {
	case nil:
		return append([]string{dir}, made...), true, nil
	case unix.EEXIST:
		return made, true, nil // made meanwhile; a non-directory fails later
	default:
		return made, true, &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
}

// fastCreateExcl creates name exclusively, for writing.
func (d *Dir) fastCreateExcl(name string) (*os.File, bool, error) {
	fd, ok, err := d.fast.openFD("open", name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o666)
	if !ok || err != nil {
		return nil, ok, err
	}
	return os.NewFile(uintptr(fd), path.Join(d.root.Name(), name)), true, nil
}

// fastLstat describes name without following a final symbolic link.
func (d *Dir) fastLstat(name string) (fs.FileInfo, bool, error) {
	f, ok, err := d.fast.open("lstat", name, oPath|unix.O_NOFOLLOW)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, nil
	}
	return fi, true, nil
}

// fastRename renames oldname to newname, whose directory exists.
func (d *Dir) fastRename(oldname, newname string) (bool, error) {
	return d.fastAt("rename", oldname, newname, func(ofd int, obase string, nfd int, nbase string) error {
		return renameat(ofd, obase, nfd, nbase)
	})
}

// fastLink makes newname, whose directory exists, a hard link to oldname.
func (d *Dir) fastLink(oldname, newname string) (bool, error) {
	return d.fastAt("link", oldname, newname, func(ofd int, obase string, nfd int, nbase string) error {
		return linkat(ofd, obase, nfd, nbase)
	})
}

func (d *Dir) fastAt(op, oldname, newname string, call func(int, string, int, string) error) (bool, error) {
	ofd, odone, ok, err := d.dirFD(op, path.Dir(oldname))
	if !ok || err != nil {
		return ok, err
	}
	defer odone()
	nfd, ndone, ok, err := d.dirFD(op, path.Dir(newname))
	if !ok || err != nil {
		return ok, err
	}
	defer ndone()
	if err := call(ofd, path.Base(oldname), nfd, path.Base(newname)); err != nil {
		return true, &os.LinkError{Op: op, Old: oldname, New: newname, Err: err}
	}
	return true, nil
}

func renameat(ofd int, oname string, nfd int, nname string) error {
	for {
		err := unix.Renameat(ofd, oname, nfd, nname)
		if err != unix.EINTR {
			return err
		}
	}
}

func linkat(ofd int, oname string, nfd int, nname string) error {
	for {
		err := unix.Linkat(ofd, oname, nfd, nname, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// readFile reads name, opened beneath the root, in raw system calls:
// openat2, fstat, then reads until the size fstat gave (or EOF), close. With
// max > 0 it reads at most max+1 bytes, enough to tell a longer file.
func (b *beneath) readFile(name string, max int) ([]byte, bool, error) {
	fd, st, ok, err := b.openRead(name)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer unix.Close(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil, true, &fs.PathError{Op: "read", Path: name, Err: unix.EISDIR}
	}
	size := int(st.Size)
	if max > 0 && size > max {
		size = max + 1
	}
	buf := make([]byte, 0, size+1)
	for {
		if max > 0 && len(buf) > max {
			break // max+1 bytes: enough to tell the file is too long
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		end := cap(buf)
		if max > 0 && end > max+1 {
			end = max + 1
		}
		n, err := unix.Read(fd, buf[len(buf):end])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, true, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		buf = buf[:len(buf)+n]
		if n == 0 || len(buf) == int(st.Size) {
			break // EOF, or all fstat announced: the layout's files never grow
		}
	}
	return buf, true, nil
}

// readFileMax is ReadFile reading at most max+1 bytes.
func (d *Dir) readFileMax(name string, max int) ([]byte, error) {
	if b, ok, err := d.fast.readFile(name, max); ok {
		return b, err
	}
	f, err := d.rootOpen(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

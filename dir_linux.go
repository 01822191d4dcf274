//go:build linux

package regstore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"
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

type openHow struct{ flags, mode, resolve uint64 }

const (
	sysOpenat2          = 437 // the same number on every Linux architecture
	resolveNoMagiclinks = 0x02
	resolveBeneath      = 0x08
	oPath               = 0x200000
)

func newBeneath(dir string) *beneath {
	fd, err := syscall.Open(dir, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	b := &beneath{fd: fd}
	b.disabled.Store(fd < 0)
	return b
}

func (b *beneath) close() {
	if b.fd >= 0 {
		syscall.Close(b.fd)
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
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, false, nil
	}
	how := openHow{flags: uint64(flags | syscall.O_CLOEXEC), mode: uint64(mode), resolve: resolveBeneath | resolveNoMagiclinks}
	for {
		fd, _, errno := syscall.Syscall6(sysOpenat2, uintptr(b.fd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		switch errno {
		case 0:
			return int(fd), true, nil
		case syscall.EINTR, syscall.EAGAIN:
			continue
		case syscall.ENOSYS, syscall.EPERM, syscall.E2BIG, syscall.EINVAL:
			b.disabled.Store(true)
			return -1, false, nil
		case syscall.EXDEV, syscall.ELOOP:
			return -1, false, nil
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES, syscall.EISDIR, syscall.EEXIST:
			return -1, true, &fs.PathError{Op: op, Path: name, Err: errno}
		default:
			return -1, false, nil
		}
	}
}

func (d *Dir) fastOpen(name string) (fs.File, bool, error) {
	f, ok, err := d.fast.open("open", name, syscall.O_RDONLY)
	if !ok || err != nil {
		return nil, ok, err
	}
	// A directory is left to os.Root, whose DirEntry.Info stats relative
	// to the directory; an *os.File from os.NewFile would stat by name.
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		return nil, false, nil
	}
	return f, true, nil
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
	f, ok, err := d.fast.openAs("readdir", name, abs, syscall.O_RDONLY|syscall.O_DIRECTORY)
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

// sysSyncfs is the number of syncfs(2), which the syscall package does
// not list on most architectures; 0 where it is not known here.
var sysSyncfs = map[string]uintptr{
	"amd64": 306, "386": 344, "arm": 373, "arm64": 267, "riscv64": 267,
	"loong64": 267, "ppc64": 348, "ppc64le": 348, "s390x": 348,
	"mips": 4342, "mipsle": 4342, "mips64": 5301, "mips64le": 5301,
}[runtime.GOARCH]

// syncFS writes back the whole filesystem holding f, and reports whether it
// could try (false: the caller syncs file by file).
func syncFS(f *os.File) (ok bool, err error) {
	if sysSyncfs == 0 {
		return false, nil
	}
	for {
		_, _, errno := syscall.Syscall(sysSyncfs, f.Fd(), 0, 0)
		switch errno {
		case 0:
			return true, nil
		case syscall.EINTR:
			continue
		case syscall.ENOSYS, syscall.EPERM:
			return false, nil
		}
		return true, errno
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
	fd, ok, err = d.fast.openFD(op, dir, oPath|syscall.O_DIRECTORY, 0)
	if !ok || err != nil {
		return -1, nil, ok, err
	}
	return fd, func() { syscall.Close(fd) }, true, nil
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
	if !errors.Is(err, syscall.ENOENT) {
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
	switch err := syscall.Mkdirat(fd, path.Base(dir), 0o777); err {
	case nil:
		return append([]string{dir}, made...), true, nil
	case syscall.EEXIST:
		return made, true, nil // made meanwhile; a non-directory fails later
	default:
		return made, true, &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
}

// fastCreateExcl creates name exclusively, for writing.
func (d *Dir) fastCreateExcl(name string) (*os.File, bool, error) {
	fd, ok, err := d.fast.openFD("open", name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o666)
	if !ok || err != nil {
		return nil, ok, err
	}
	return os.NewFile(uintptr(fd), path.Join(d.root.Name(), name)), true, nil
}

// fastLstat describes name without following a final symbolic link.
func (d *Dir) fastLstat(name string) (fs.FileInfo, bool, error) {
	f, ok, err := d.fast.open("lstat", name, oPath|syscall.O_NOFOLLOW)
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
		err := syscall.Renameat(ofd, oname, nfd, nname)
		if err != syscall.EINTR {
			return err
		}
	}
}

func linkat(ofd int, oname string, nfd int, nname string) error {
	return atCall(syscall.SYS_LINKAT, ofd, oname, nfd, nname, 0)
}

// atCall calls linkat (which the syscall package does not export).
func atCall(trap uintptr, ofd int, oname string, nfd int, nname string, flags int) error {
	op, err := syscall.BytePtrFromString(oname)
	if err != nil {
		return err
	}
	np, err := syscall.BytePtrFromString(nname)
	if err != nil {
		return err
	}
	for {
		_, _, errno := syscall.Syscall6(trap, uintptr(ofd), uintptr(unsafe.Pointer(op)),
			uintptr(nfd), uintptr(unsafe.Pointer(np)), uintptr(flags), 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// readFile reads name, opened beneath the root, in raw system calls:
// openat2, fstat, then reads until the size fstat gave (or EOF), close. With
// max > 0 it reads at most max+1 bytes, enough to tell a longer file.
func (b *beneath) readFile(name string, max int) ([]byte, bool, error) {
	fd, ok, err := b.openFD("open", name, syscall.O_RDONLY, 0)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, false, nil
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, true, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	size := int(st.Size)
	if max > 0 && size > max {
		size = max + 1
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			if max > 0 && len(buf) > max {
				break
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
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
	f, err := d.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

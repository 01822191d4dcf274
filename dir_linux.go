//go:build linux

package regstore

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
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
	if b.disabled.Load() || !fs.ValidPath(name) {
		return nil, false, nil
	}
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return nil, false, nil
	}
	how := openHow{flags: uint64(flags | syscall.O_CLOEXEC), resolve: resolveBeneath | resolveNoMagiclinks}
	for {
		fd, _, errno := syscall.Syscall6(sysOpenat2, uintptr(b.fd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		switch errno {
		case 0:
			return os.NewFile(fd, fileName), true, nil
		case syscall.EINTR, syscall.EAGAIN:
			continue
		case syscall.ENOSYS, syscall.EPERM, syscall.E2BIG, syscall.EINVAL:
			b.disabled.Store(true)
			return nil, false, nil
		case syscall.EXDEV, syscall.ELOOP:
			return nil, false, nil
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES, syscall.EISDIR:
			return nil, true, &fs.PathError{Op: op, Path: name, Err: errno}
		default:
			return nil, false, nil
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

func (e dirEntry) Info() (fs.FileInfo, error) { return e.d.root.Lstat(e.path) }

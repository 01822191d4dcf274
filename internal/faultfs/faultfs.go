// Package faultfs wraps a regstore backend to inject faults at a chosen
// mutating operation, for crash-consistency tests.
//
// Every mutating backend operation is counted, in the order it is called:
// Create, each Write and the Commit or Cancel of a [regstore.FileWriter],
// Remove, and the optional upgrades Rename, RemoveAll, Link and Chtimes.
// Reads are not counted. At the operation numbered [Fault.At] (from 1) the
// wrapper injects a fault of one of two kinds:
//
//   - [Fail]: that one operation is not performed and returns an error
//     wrapping [Fault.Err]; a failed Commit cancels the inner write, as the
//     [regstore.WriteFS] contract asks of a failed Commit. Later operations
//     go through: the process carries on and may clean up.
//   - [Crash]: that operation and every later one, reads included, fail
//     without touching the inner backend, as if the process had been killed
//     at that point. Nothing is cleaned up: Commit is not performed and
//     Cancel does nothing, so the temporary files of unfinished writes stay
//     as a power cut leaves them. A Write that crashes passes the first half
//     of its bytes on (a torn write into the temporary file, never visible
//     under the final name).
//
// The wrapper has exactly the optional upgrades of the inner backend
// ([regstore.RenameFS], [regstore.RemoveAllFS], [regstore.LinkFS],
// [regstore.ChtimesFS] and [regstore.WalkFS]), so the code under test takes
// the same paths as on the inner backend. The read upgrades [fs.StatFS],
// [fs.ReadDirFS] and [fs.ReadFileFS] are always present; without them in the
// inner backend they fall back to the io/fs helpers, which is what callers
// would do themselves.
//
// Operations are counted under a lock, so the wrapper is safe for
// concurrent use, but the numbering is deterministic only when the code
// under test is sequential.
package faultfs

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/regstore/regstore"
)

// ErrInjected is the default error of an injected fault.
var ErrInjected = errors.New("faultfs: injected fault")

// ErrCrashed is the error of every operation after a crash.
var ErrCrashed = errors.New("faultfs: crashed")

// Mode is the kind of fault injected.
type Mode int

const (
	// Fail makes the chosen operation fail; later ones proceed.
	Fail Mode = iota + 1
	// Crash makes the chosen operation and every later one fail, with no
	// cleanup.
	Crash
)

func (m Mode) String() string {
	switch m {
	case Fail:
		return "fail"
	case Crash:
		return "crash"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Kind names a mutating operation.
type Kind string

// The mutating operations counted.
const (
	OpCreate    Kind = "create"
	OpWrite     Kind = "write"
	OpCommit    Kind = "commit"
	OpCancel    Kind = "cancel"
	OpRemove    Kind = "remove"
	OpRename    Kind = "rename"
	OpRemoveAll Kind = "removeall"
	OpLink      Kind = "link"
	OpChtimes   Kind = "chtimes"
)

// Op is one mutating operation, as recorded.
type Op struct {
	N       int    // its number, from 1
	Kind    Kind   // what it is
	Name    string // the path it acts on (for a writer's Write, Commit and Cancel, the name given to Create)
	NewName string // the second path of Rename and Link
	Fault   bool   // whether the fault was injected here, or (Crash) the backend was already dead
}

func (o Op) String() string {
	s := fmt.Sprintf("#%d %s %s", o.N, o.Kind, o.Name)
	if o.NewName != "" {
		s += " -> " + o.NewName
	}
	if o.Fault {
		s += " (fault)"
	}
	return s
}

// Fault says where and how to inject.
type Fault struct {
	// At is the number, from 1, of the mutating operation to fault.
	// Zero (or a number past the last operation) injects nothing: the
	// wrapper only counts.
	At int
	// Mode is Fail or Crash; zero means Crash.
	Mode Mode
	// Err is the error injected; nil means ErrInjected.
	Err error
	// Before, if set, is called before each mutating operation is
	// performed (or faulted), outside the wrapper's lock, with the
	// operation as it will be recorded. Tests use it to interleave a
	// concurrent writer at an exact point.
	Before func(Op)
}

// Injector counts the operations made through its backend and injects the
// fault.
type Injector struct {
	inner regstore.WriteFS
	fault Fault
	fsys  regstore.WriteFS

	mu      sync.Mutex
	n       int
	crashed bool
	fired   bool
	ops     []Op
}

// New wraps inner. The wrapped backend is [Injector.FS].
func New(inner regstore.WriteFS, fault Fault) *Injector {
	if fault.Mode == 0 {
		fault.Mode = Crash
	}
	if fault.Err == nil {
		fault.Err = ErrInjected
	}
	in := &Injector{inner: inner, fault: fault}
	in.fsys = wrap(&base{in: in}, capsOf(inner))
	return in
}

// FS is the wrapped backend, with the inner backend's upgrades.
func (in *Injector) FS() regstore.WriteFS { return in.fsys }

// Count is the number of mutating operations called so far, faulted ones
// included.
func (in *Injector) Count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.n
}

// Ops returns the mutating operations called so far, in order.
func (in *Injector) Ops() []Op {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Op(nil), in.ops...)
}

// Fired reports whether the fault has been injected.
func (in *Injector) Fired() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired
}

// Crashed reports whether the backend is dead (Crash mode, after the
// fault).
func (in *Injector) Crashed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.crashed
}

// step records a mutating operation and returns the error to fail it
// with, or nil to perform it. first reports whether this is the faulted
// operation itself (not one after a crash).
func (in *Injector) step(kind Kind, name, newName string) (err error, first bool) {
	if in.fault.Before != nil {
		in.mu.Lock()
		op := Op{N: in.n + 1, Kind: kind, Name: name, NewName: newName}
		op.Fault = in.crashed || op.N == in.fault.At
		in.mu.Unlock()
		in.fault.Before(op)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.n++
	op := Op{N: in.n, Kind: kind, Name: name, NewName: newName}
	switch {
	case in.crashed:
		op.Fault = true
		err = ErrCrashed
	case in.n == in.fault.At:
		op.Fault, first, in.fired = true, true, true
		err = in.fault.Err
		if in.fault.Mode == Crash {
			in.crashed = true
		}
	}
	in.ops = append(in.ops, op)
	if err != nil {
		return &fs.PathError{Op: string(kind), Path: name, Err: err}, first
	}
	return nil, false
}

// dead returns the error of a read after a crash.
func (in *Injector) dead(op, name string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.crashed {
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

// caps is the set of optional upgrades a backend has.
type caps uint8

const (
	capRename caps = 1 << iota
	capRemoveAll
	capLink
	capChtimes
	capWalk
	capAll = capRename | capRemoveAll | capLink | capChtimes | capWalk
)

// capsOf lists the optional upgrades of fsys.
func capsOf(fsys fs.FS) caps {
	var c caps
	if _, ok := fsys.(regstore.RenameFS); ok {
		c |= capRename
	}
	if _, ok := fsys.(regstore.RemoveAllFS); ok {
		c |= capRemoveAll
	}
	if _, ok := fsys.(regstore.LinkFS); ok {
		c |= capLink
	}
	if _, ok := fsys.(regstore.ChtimesFS); ok {
		c |= capChtimes
	}
	if _, ok := fsys.(regstore.WalkFS); ok {
		c |= capWalk
	}
	return c
}

// base is the wrapper without optional upgrades.
type base struct{ in *Injector }

var (
	_ regstore.WriteFS = (*base)(nil)
	_ fs.StatFS        = (*base)(nil)
	_ fs.ReadDirFS     = (*base)(nil)
	_ fs.ReadFileFS    = (*base)(nil)
)

func (b *base) Open(name string) (fs.File, error) {
	if err := b.in.dead("open", name); err != nil {
		return nil, err
	}
	return b.in.inner.Open(name)
}

func (b *base) Stat(name string) (fs.FileInfo, error) {
	if err := b.in.dead("stat", name); err != nil {
		return nil, err
	}
	return fs.Stat(b.in.inner, name)
}

func (b *base) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := b.in.dead("readdir", name); err != nil {
		return nil, err
	}
	return fs.ReadDir(b.in.inner, name)
}

func (b *base) ReadFile(name string) ([]byte, error) {
	if err := b.in.dead("readfile", name); err != nil {
		return nil, err
	}
	return fs.ReadFile(b.in.inner, name)
}

func (b *base) Create(name string) (regstore.FileWriter, error) {
	if err, _ := b.in.step(OpCreate, name, ""); err != nil {
		return nil, err
	}
	fw, err := b.in.inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &writer{in: b.in, name: name, fw: fw}, nil
}

func (b *base) Remove(name string) error {
	if err, _ := b.in.step(OpRemove, name, ""); err != nil {
		return err
	}
	return b.in.inner.Remove(name)
}

// writer wraps one FileWriter of the inner backend.
type writer struct {
	in   *Injector
	name string
	fw   regstore.FileWriter
}

func (w *writer) Write(p []byte) (int, error) {
	err, first := w.in.step(OpWrite, w.name, "")
	if err == nil {
		return w.fw.Write(p)
	}
	if first && w.in.fault.Mode == Crash {
		// A torn write: part of the bytes reach the temporary file.
		n, _ := w.fw.Write(p[:len(p)/2])
		return n, err
	}
	return 0, err
}

func (w *writer) Commit() error {
	err, first := w.in.step(OpCommit, w.name, "")
	if err == nil {
		return w.fw.Commit()
	}
	if first && w.in.fault.Mode == Fail {
		// A failed Commit leaves the name as it was and cleans up.
		return errors.Join(err, w.fw.Cancel())
	}
	return err
}

func (w *writer) Cancel() error {
	if err, _ := w.in.step(OpCancel, w.name, ""); err != nil {
		return err
	}
	return w.fw.Cancel()
}

// The optional upgrades, each forwarding to the inner backend's method.
type (
	renamer    struct{ in *Injector }
	removerAll struct{ in *Injector }
	linker     struct{ in *Injector }
	chtimeser  struct{ in *Injector }
	walker     struct{ in *Injector }
)

func (r renamer) Rename(oldname, newname string) error {
	if err, _ := r.in.step(OpRename, oldname, newname); err != nil {
		return err
	}
	return r.in.inner.(regstore.RenameFS).Rename(oldname, newname)
}

func (r removerAll) RemoveAll(name string) error {
	if err, _ := r.in.step(OpRemoveAll, name, ""); err != nil {
		return err
	}
	return r.in.inner.(regstore.RemoveAllFS).RemoveAll(name)
}

func (l linker) Link(oldname, newname string) error {
	if err, _ := l.in.step(OpLink, oldname, newname); err != nil {
		return err
	}
	return l.in.inner.(regstore.LinkFS).Link(oldname, newname)
}

func (c chtimeser) Chtimes(name string, mtime time.Time) error {
	if err, _ := c.in.step(OpChtimes, name, ""); err != nil {
		return err
	}
	return c.in.inner.(regstore.ChtimesFS).Chtimes(name, mtime)
}

func (w walker) WalkFiles(dir string, fn func(name string, info fs.FileInfo) error) error {
	if err := w.in.dead("walk", dir); err != nil {
		return err
	}
	return w.in.inner.(regstore.WalkFS).WalkFiles(dir, func(name string, info fs.FileInfo) error {
		if err := w.in.dead("walk", dir); err != nil {
			return err
		}
		return fn(name, info)
	})
}

// wrap returns b with exactly the upgrades in c: one struct type per
// combination, since a type assertion must fail for an upgrade the inner
// backend lacks.
func wrap(b *base, c caps) regstore.WriteFS {
	in := b.in
	rn, ra, ln, ch, wk := renamer{in}, removerAll{in}, linker{in}, chtimeser{in}, walker{in}
	switch c {
	case 0:
		return b
	case capRename:
		return struct {
			*base
			renamer
		}{b, rn}
	case capRemoveAll:
		return struct {
			*base
			removerAll
		}{b, ra}
	case capRename | capRemoveAll:
		return struct {
			*base
			renamer
			removerAll
		}{b, rn, ra}
	case capLink:
		return struct {
			*base
			linker
		}{b, ln}
	case capRename | capLink:
		return struct {
			*base
			renamer
			linker
		}{b, rn, ln}
	case capRemoveAll | capLink:
		return struct {
			*base
			removerAll
			linker
		}{b, ra, ln}
	case capRename | capRemoveAll | capLink:
		return struct {
			*base
			renamer
			removerAll
			linker
		}{b, rn, ra, ln}
	case capChtimes:
		return struct {
			*base
			chtimeser
		}{b, ch}
	case capRename | capChtimes:
		return struct {
			*base
			renamer
			chtimeser
		}{b, rn, ch}
	case capRemoveAll | capChtimes:
		return struct {
			*base
			removerAll
			chtimeser
		}{b, ra, ch}
	case capRename | capRemoveAll | capChtimes:
		return struct {
			*base
			renamer
			removerAll
			chtimeser
		}{b, rn, ra, ch}
	case capLink | capChtimes:
		return struct {
			*base
			linker
			chtimeser
		}{b, ln, ch}
	case capRename | capLink | capChtimes:
		return struct {
			*base
			renamer
			linker
			chtimeser
		}{b, rn, ln, ch}
	case capRemoveAll | capLink | capChtimes:
		return struct {
			*base
			removerAll
			linker
			chtimeser
		}{b, ra, ln, ch}
	case capRename | capRemoveAll | capLink | capChtimes:
		return struct {
			*base
			renamer
			removerAll
			linker
			chtimeser
		}{b, rn, ra, ln, ch}
	}
	// With WalkFS: the same sixteen, plus walker.
	switch c &^ capWalk {
	case 0:
		return struct {
			*base
			walker
		}{b, wk}
	case capRename:
		return struct {
			*base
			renamer
			walker
		}{b, rn, wk}
	case capRemoveAll:
		return struct {
			*base
			removerAll
			walker
		}{b, ra, wk}
	case capRename | capRemoveAll:
		return struct {
			*base
			renamer
			removerAll
			walker
		}{b, rn, ra, wk}
	case capLink:
		return struct {
			*base
			linker
			walker
		}{b, ln, wk}
	case capRename | capLink:
		return struct {
			*base
			renamer
			linker
			walker
		}{b, rn, ln, wk}
	case capRemoveAll | capLink:
		return struct {
			*base
			removerAll
			linker
			walker
		}{b, ra, ln, wk}
	case capRename | capRemoveAll | capLink:
		return struct {
			*base
			renamer
			removerAll
			linker
			walker
		}{b, rn, ra, ln, wk}
	case capChtimes:
		return struct {
			*base
			chtimeser
			walker
		}{b, ch, wk}
	case capRename | capChtimes:
		return struct {
			*base
			renamer
			chtimeser
			walker
		}{b, rn, ch, wk}
	case capRemoveAll | capChtimes:
		return struct {
			*base
			removerAll
			chtimeser
			walker
		}{b, ra, ch, wk}
	case capRename | capRemoveAll | capChtimes:
		return struct {
			*base
			renamer
			removerAll
			chtimeser
			walker
		}{b, rn, ra, ch, wk}
	case capLink | capChtimes:
		return struct {
			*base
			linker
			chtimeser
			walker
		}{b, ln, ch, wk}
	case capRename | capLink | capChtimes:
		return struct {
			*base
			renamer
			linker
			chtimeser
			walker
		}{b, rn, ln, ch, wk}
	case capRemoveAll | capLink | capChtimes:
		return struct {
			*base
			removerAll
			linker
			chtimeser
			walker
		}{b, ra, ln, ch, wk}
	default: // all four
		return struct {
			*base
			renamer
			removerAll
			linker
			chtimeser
			walker
		}{b, rn, ra, ln, ch, wk}
	}
}

package faultfs

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainFS hides every optional upgrade of a MemFS.
type plainFS struct{ m *regstore.MemFS }

func (p plainFS) Open(name string) (fs.File, error)               { return p.m.Open(name) }
func (p plainFS) Create(name string) (regstore.FileWriter, error) { return p.m.Create(name) }
func (p plainFS) Remove(name string) error                        { return p.m.Remove(name) }

// walkFS adds a WalkFiles to a backend, on top of fs.WalkDir.
type walkFS struct{ plainFS }

func (w walkFS) WalkFiles(dir string, fn func(string, fs.FileInfo) error) error {
	err := fs.WalkDir(w.m, dir, func(p string, d fs.DirEntry, err error) error {
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

// withCaps returns a MemFS-backed backend with exactly the upgrades in c,
// built by a counting-only Injector over a backend that has them all (the
// exhaustive check of wrap is TestWrapCaps).
func withCaps(t *testing.T, c caps) (regstore.WriteFS, *regstore.MemFS) {
	t.Helper()
	m := regstore.NewMemFS()
	full := struct {
		*regstore.MemFS
		walkFS
	}{m, walkFS{plainFS{m}}}
	require.Equal(t, capAll, capsOf(full), "capsOf(MemFS+WalkFiles)")
	in := New(full, Fault{})
	return wrap(&base{in: in}, c), m
}

func TestCapsOfBackends(t *testing.T) {
	m := regstore.NewMemFS()
	assert.Equal(t, capRename|capRemoveAll|capLink|capChtimes, capsOf(m), "capsOf(MemFS)")
	d, err := regstore.OpenDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	assert.Equal(t, capRename|capRemoveAll|capLink|capChtimes, capsOf(d), "capsOf(Dir)")
	assert.Equal(t, caps(0), capsOf(plainFS{m}), "capsOf(plainFS)")
	assert.Equal(t, capWalk, capsOf(walkFS{plainFS{m}}), "capsOf(walkFS)")
}

// TestWrapCaps: for every combination of upgrades, the wrapper has exactly
// the inner backend's, and each forwards to the inner backend.
func TestWrapCaps(t *testing.T) {
	for c := caps(0); c <= capAll; c++ {
		inner, m := withCaps(t, c)
		require.Equal(t, c, capsOf(inner), "capsOf(wrap(%05b))", c)
		in := New(inner, Fault{})
		w := in.FS()
		assert.Equal(t, c, capsOf(w), "capsOf(New(inner with %05b).FS())", c)

		backendtest.Put(t, w, "a/b", "x")
		want := []Kind{OpCreate, OpWrite, OpCommit}
		if c&capRename != 0 {
			require.NoError(t, w.(regstore.RenameFS).Rename("a/b", "a/c"))
			want = append(want, OpRename)
		} else {
			backendtest.Put(t, w, "a/c", "x")
			require.NoError(t, w.Remove("a/b"))
			want = append(want, OpCreate, OpWrite, OpCommit, OpRemove)
		}
		if c&capLink != 0 {
			require.NoError(t, w.(regstore.LinkFS).Link("a/c", "a/d"))
			want = append(want, OpLink)
		}
		if c&capChtimes != 0 {
			when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			require.NoError(t, w.(regstore.ChtimesFS).Chtimes("a/c", when))
			fi, err := m.Stat("a/c")
			require.NoError(t, err)
			assert.True(t, fi.ModTime().Equal(when), "Chtimes did not reach the inner backend (%05b)", c)
			want = append(want, OpChtimes)
		}
		if c&capWalk != 0 {
			var seen []string
			require.NoError(t, w.(regstore.WalkFS).WalkFiles("a", func(p string, _ fs.FileInfo) error {
				seen = append(seen, p)
				return nil
			}))
			assert.Contains(t, seen, "a/c", "WalkFiles (%05b)", c)
		}
		if c&capRemoveAll != 0 {
			require.NoError(t, w.(regstore.RemoveAllFS).RemoveAll("a"))
			want = append(want, OpRemoveAll)
			_, err := m.Stat("a")
			assert.ErrorIs(t, err, fs.ErrNotExist, "RemoveAll did not reach the inner backend (%05b)", c)
		}
		var got []Kind
		for _, op := range in.Ops() {
			got = append(got, op.Kind)
		}
		assert.Equal(t, want, got, "operations counted (%05b)", c)
		assert.Equal(t, len(want), in.Count(), "Count (%05b)", c)
	}
}

// TestContract: a wrapper that injects nothing passes the backend contract,
// over a backend with every upgrade and over one with none.
func TestContract(t *testing.T) {
	t.Run("MemFS", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) regstore.WriteFS {
			return New(regstore.NewMemFS(), Fault{}).FS()
		})
	})
	t.Run("Dir", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) regstore.WriteFS {
			d, err := regstore.OpenDir(t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			return New(d, Fault{}).FS()
		})
	})
}

// listing is every file and directory of fsys.
func listing(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	return backendtest.Listing(t, fsys, ".")
}

// tmpFiles are the *.tmp files of fsys.
func tmpFiles(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	var out []string
	for _, e := range listing(t, fsys) {
		name, _, _ := strings.Cut(e, "=")
		if strings.HasSuffix(name, ".tmp") {
			out = append(out, name)
		}
	}
	return out
}

// script is a sequence of mutating operations: 3 writes of one file with
// two Write calls each (ops 1-4, 5-8), a cancelled write (9-11), a rename
// (12) and a remove (13).
func script(w regstore.WriteFS) error {
	put := func(name string) error {
		fw, err := w.Create(name)
		if err != nil {
			return err
		}
		for _, s := range []string{"ab", "cd"} {
			if _, err := io.WriteString(fw, s); err != nil {
				return errors.Join(err, fw.Cancel())
			}
		}
		return fw.Commit()
	}
	if err := put("a/x"); err != nil {
		return err
	}
	if err := put("a/y"); err != nil {
		return err
	}
	fw, err := w.Create("a/z")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(fw, "zz"); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	if err := fw.Cancel(); err != nil {
		return err
	}
	if err := w.(regstore.RenameFS).Rename("a/x", "a/w"); err != nil {
		return err
	}
	return w.Remove("a/y")
}

const scriptOps = 13

func TestCountOnly(t *testing.T) {
	m := regstore.NewMemFS()
	in := New(m, Fault{})
	require.NoError(t, script(in.FS()))
	assert.Equal(t, scriptOps, in.Count())
	assert.False(t, in.Fired(), "Fired")
	assert.Equal(t, []string{"a/", "a/w=abcd"}, listing(t, m))
	ops := in.Ops()
	assert.Equal(t, Op{N: 12, Kind: OpRename, Name: "a/x", NewName: "a/w"}, ops[11])
	assert.Equal(t, "#12 rename a/x -> a/w", ops[11].String())
}

// TestFail: at every point, the faulted operation returns an error
// wrapping the injected one, is not performed, and the process goes on
// (here: the script stops at the error, but cleanup calls go through).
func TestFail(t *testing.T) {
	custom := errors.New("disk full")
	for at := 1; at <= scriptOps; at++ {
		m := regstore.NewMemFS()
		in := New(m, Fault{At: at, Mode: Fail, Err: custom})
		err := script(in.FS())
		require.ErrorIs(t, err, custom, "script with Fail at %d", at)
		var pe *fs.PathError
		assert.ErrorAs(t, err, &pe, "script with Fail at %d", at)
		assert.True(t, in.Fired(), "Fired at %d", at)
		assert.False(t, in.Crashed(), "Crashed at %d", at)
		ops := in.Ops()
		require.GreaterOrEqual(t, len(ops), at)
		assert.True(t, ops[at-1].Fault, "op %d marked", at)
		for _, op := range ops[at:] {
			assert.False(t, op.Fault, "op %v after a Fail", op)
		}
		switch at {
		case 2, 3, 6, 7:
			// A failed Write is followed by the caller's Cancel, which
			// goes through.
			assert.Equal(t, OpCancel, ops[len(ops)-1].Kind, "last op after a failed Write at %d", at)
			assert.Empty(t, tmpFiles(t, m), "temporary files after a failed Write at %d", at)
		case 4, 8:
			// A failed Commit cleans up, as the contract says.
			assert.Empty(t, tmpFiles(t, m), "temporary files after a failed Commit at %d", at)
		case 11:
			// A failed Cancel leaves the temporary file.
			assert.Len(t, tmpFiles(t, m), 1, "temporary files after a failed Cancel")
		}
		if at <= 12 {
			_, err = m.Stat("a/w")
			assert.ErrorIs(t, err, fs.ErrNotExist, "a/w exists after Fail at %d", at)
		} else {
			assert.Contains(t, listing(t, m), "a/y=abcd", "a/y removed after Fail at Remove")
		}
	}
}

// TestCrash: at every point, the faulted operation and all later ones
// fail, reads included; nothing is cleaned up; committed files stay.
func TestCrash(t *testing.T) {
	for at := 1; at <= scriptOps; at++ {
		m := regstore.NewMemFS()
		in := New(m, Fault{At: at, Mode: Crash})
		w := in.FS()
		err := script(w)
		require.ErrorIs(t, err, ErrInjected, "script with Crash at %d", at)
		assert.True(t, in.Crashed(), "Crashed at %d", at)
		ops := in.Ops()
		for _, op := range ops[at-1:] {
			assert.True(t, op.Fault, "op %v at or after a crash at %d", op, at)
		}
		// Everything fails now.
		_, err = w.Open("a")
		assert.ErrorIs(t, err, ErrCrashed, "Open after a crash")
		_, err = fs.ReadDir(w, "a")
		assert.ErrorIs(t, err, ErrCrashed, "ReadDir after a crash")
		_, err = fs.Stat(w, "a")
		assert.ErrorIs(t, err, ErrCrashed, "Stat after a crash")
		_, err = fs.ReadFile(w, "a/x")
		assert.ErrorIs(t, err, ErrCrashed, "ReadFile after a crash")
		_, err = w.Create("b")
		assert.ErrorIs(t, err, ErrCrashed, "Create after a crash")
		assert.ErrorIs(t, w.Remove("a"), ErrCrashed, "Remove after a crash")

		l := listing(t, m)
		has := func(e string) bool { return slices.Contains(l, e) }
		tmps := tmpFiles(t, m)
		switch {
		case at == 1:
			assert.Equal(t, []string(nil), l, "tree after a crash at Create")
		case at <= 4:
			// Inside the first write: only its temporary file, never a/x.
			assert.Len(t, tmps, 1, "temporary files after a crash at %d: %v", at, l)
			assert.False(t, has("a/x=abcd"), "a/x after a crash at %d", at)
		case at <= 8:
			assert.True(t, has("a/x=abcd"), "a/x committed before a crash at %d", at)
			assert.Len(t, tmps, min(at-5, 1), "temporary files after a crash at %d: %v", at, l)
		case at <= 11:
			// Cancel is a no-op after a crash: the temporary file of
			// a/z stays (unless Create itself crashed).
			assert.True(t, has("a/y=abcd"), "a/y after a crash at %d", at)
			assert.Len(t, tmps, min(at-9, 1), "temporary files after a crash at %d: %v", at, l)
		case at == 12:
			assert.True(t, has("a/x=abcd"), "a/x not renamed after a crash at Rename")
		case at == 13:
			assert.True(t, has("a/w=abcd") && has("a/y=abcd"), "tree after a crash at Remove: %v", l)
		}
	}
}

// TestCrashTornWrite: a Write that crashes on a Dir passes half its bytes
// to the temporary file, which is never published.
func TestCrashTornWrite(t *testing.T) {
	d, err := regstore.OpenDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	in := New(d, Fault{At: 2})
	fw, err := in.FS().Create("f")
	require.NoError(t, err)
	n, err := fw.Write([]byte("abcdef"))
	assert.ErrorIs(t, err, ErrInjected)
	assert.Equal(t, 3, n, "bytes written by a torn Write")
	assert.ErrorIs(t, fw.Commit(), ErrCrashed)
	assert.ErrorIs(t, fw.Cancel(), ErrCrashed)
	entries, err := fs.ReadDir(d, ".")
	require.NoError(t, err)
	require.Len(t, entries, 1, "files after a torn write")
	assert.True(t, strings.HasSuffix(entries[0].Name(), ".tmp"), "%s is the temporary file", entries[0].Name())
	b, err := fs.ReadFile(d, entries[0].Name())
	require.NoError(t, err)
	assert.Equal(t, "abc", string(b), "temporary file after a torn write")
}

// TestBefore: the hook sees every operation, numbered, before it happens,
// and may write to the inner backend at that point.
func TestBefore(t *testing.T) {
	m := regstore.NewMemFS()
	var seen []Op
	in := New(m, Fault{At: 12, Mode: Crash, Before: func(op Op) {
		seen = append(seen, op)
		if op.Kind == OpRename {
			backendtest.Put(t, m, "other", "o")
		}
	}})
	require.Error(t, script(in.FS()))
	assert.Equal(t, in.Ops(), seen, "operations seen by Before")
	assert.Contains(t, listing(t, m), "other=o", "the hook's write")
}

func TestModeString(t *testing.T) {
	assert.Equal(t, "fail", Fail.String())
	assert.Equal(t, "crash", Crash.String())
	assert.Equal(t, "Mode(7)", Mode(7).String())
}

// Package backendtest is the contract suite every regstore backend passes:
// run it from a backend's own tests to check that the backend behaves as
// the store needs (atomic Commit, invisible until committed, Cancel leaves
// nothing, invalid paths refused, missing files reported as fs.ErrNotExist,
// sorted ReadDir, concurrent writers of one name, fstest.TestFS, and each
// optional upgrade the backend has: Rename, RemoveAll, Link, Chtimes).
//
//	func TestContract(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) regstore.WriteFS {
//			return mybackend.New(t.TempDir())
//		})
//	}
//
// It also has small helpers for backend tests: Put, Listing, Clean. It is
// not a benchmark, and it does not test a store's layout (the regstore
// package's own tests do, over every backend it ships).
package backendtest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Options describes what a backend is, where the contract allows a choice.
type Options struct {
	// ImplicitDirs is for object stores, where a directory is only a key
	// prefix: it vanishes with its last file (so removing it afterwards may
	// report fs.ErrNotExist), and a file below a file may be refused at
	// Commit instead of Create.
	ImplicitDirs bool
}

// Run checks the WriteFS contract on fresh backends made by newFS. Each
// subtest gets its own empty backend.
func Run(t *testing.T, newFS func(t *testing.T) regstore.WriteFS) {
	RunOptions(t, Options{}, newFS)
}

// RunOptions is Run for a backend described by opts.
func RunOptions(t *testing.T, opts Options, newFS func(t *testing.T) regstore.WriteFS) {
	testRemove := func(t *testing.T, w regstore.WriteFS) { testRemove(t, w, opts) }
	testFileInDirPath := func(t *testing.T, w regstore.WriteFS) { testFileInDirPath(t, w, opts) }
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, w regstore.WriteFS)
	}{
		{"CreateCommit", testCreateCommit},
		{"InvisibleUntilCommit", testInvisibleUntilCommit},
		{"CommitReplaces", testCommitReplaces},
		{"CancelLeavesNothing", testCancelLeavesNothing},
		{"BadPaths", testBadPaths},
		{"Missing", testMissing},
		{"Remove", testRemove},
		{"ReadDirSorted", testReadDirSorted},
		{"FileInDirPath", testFileInDirPath},
		{"ConcurrentSameName", testConcurrentSameName},
		{"FSTest", testFSTest},
		{"Rename", testRename},
		{"RemoveAll", testRemoveAll},
		{"Link", testLink},
		{"Chtimes", testChtimes},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newFS(t)) })
	}
}

// Put writes content at name through the backend and commits it.
func Put(t testing.TB, w regstore.WriteFS, name, content string) {
	t.Helper()
	fw, err := w.Create(name)
	require.NoError(t, err, "Create(%q)", name)
	_, err = io.WriteString(fw, content)
	require.NoError(t, err, "Write(%q)", name)
	require.NoError(t, fw.Commit(), "Commit(%q)", name)
}

// Listing returns every file and directory below dir ("path/" for
// directories, "path=content" for files), in walk order.
func Listing(t testing.TB, fsys fs.FS, dir string) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if d.IsDir() {
			out = append(out, p+"/")
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out = append(out, p+"="+string(b))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err, "WalkDir(%q)", dir)
	return out
}

func testCreateCommit(t *testing.T, w regstore.WriteFS) {
	Put(t, w, "a/b/c/file", "hello")
	b, err := fs.ReadFile(w, "a/b/c/file")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b), "ReadFile(a/b/c/file)")
	fi, err := fs.Stat(w, "a/b/c/file")
	require.NoError(t, err)
	assert.Equal(t, int64(5), fi.Size(), "Stat(a/b/c/file).Size()")
	assert.False(t, fi.IsDir())
	assert.Equal(t, "file", fi.Name())
	for _, dir := range []string{"a", "a/b", "a/b/c"} {
		fi, err := fs.Stat(w, dir)
		require.NoError(t, err, "Stat(%q)", dir)
		assert.True(t, fi.IsDir(), "Stat(%q).IsDir()", dir)
	}
	Put(t, w, "empty", "")
	b, err = fs.ReadFile(w, "empty")
	require.NoError(t, err)
	assert.Empty(t, b, "ReadFile(empty)")
}

func testInvisibleUntilCommit(t *testing.T, w regstore.WriteFS) {
	fw, err := w.Create("dir/file")
	require.NoError(t, err)
	_, err = io.WriteString(fw, "partial")
	require.NoError(t, err)
	_, err = fs.Stat(w, "dir/file")
	assert.ErrorIs(t, err, fs.ErrNotExist, "Stat(dir/file) before Commit")
	require.NoError(t, fw.Commit())
	b, err := fs.ReadFile(w, "dir/file")
	require.NoError(t, err)
	assert.Equal(t, "partial", string(b))
	assert.Equal(t, []string{"dir/file=partial"}, Listing(t, w, "dir"), "no temporary file remains after Commit")
}

func testCommitReplaces(t *testing.T, w regstore.WriteFS) {
	Put(t, w, "f", "old content")
	fw, err := w.Create("f")
	require.NoError(t, err)
	_, err = io.WriteString(fw, "new")
	require.NoError(t, err)
	b, err := fs.ReadFile(w, "f")
	require.NoError(t, err)
	assert.Equal(t, "old content", string(b), "ReadFile(f) while replacing")
	require.NoError(t, fw.Commit())
	b, err = fs.ReadFile(w, "f")
	require.NoError(t, err)
	assert.Equal(t, "new", string(b), "ReadFile(f) after replacing")
}

func testCancelLeavesNothing(t *testing.T, w regstore.WriteFS) {
	Put(t, w, "keep/file", "x")
	before := Listing(t, w, ".")
	fw, err := w.Create("keep/new/deep/file")
	require.NoError(t, err)
	_, err = io.WriteString(fw, "discarded")
	require.NoError(t, err)
	require.NoError(t, fw.Cancel())
	assert.Equal(t, before, Listing(t, w, "."), "tree after Cancel")

	fw, err = w.Create("keep/file")
	require.NoError(t, err)
	_, err = io.WriteString(fw, "discarded")
	require.NoError(t, err)
	require.NoError(t, fw.Cancel())
	assert.Equal(t, before, Listing(t, w, "."), "tree after cancelled replace")
}

// BadPaths are names no backend may accept.
var BadPaths = []string{"", ".", "/abs", "/", "a/", "a//b", "a/./b", "a/../b", "..", "../x", "a/..", "./a"}

func testBadPaths(t *testing.T, w regstore.WriteFS) {
	Put(t, w, "a/b", "x")
	before := Listing(t, w, ".")
	for _, p := range BadPaths {
		_, err := w.Create(p)
		assert.ErrorIs(t, err, fs.ErrInvalid, "Create(%q)", p)
		assert.ErrorIs(t, w.Remove(p), fs.ErrInvalid, "Remove(%q)", p)
		if p != "." {
			_, err = w.Open(p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Open(%q)", p)
		}
	}
	assert.Equal(t, before, Listing(t, w, "."), "tree after bad paths")
}

func testMissing(t *testing.T, w regstore.WriteFS) {
	Put(t, w, "dir/file", "x")
	for _, p := range []string{"missing", "dir/missing", "missing/deeper"} {
		_, err := w.Open(p)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Open(%q)", p)
		_, err = fs.Stat(w, p)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Stat(%q)", p)
		_, err = fs.ReadFile(w, p)
		assert.ErrorIs(t, err, fs.ErrNotExist, "ReadFile(%q)", p)
		_, err = fs.ReadDir(w, p)
		assert.ErrorIs(t, err, fs.ErrNotExist, "ReadDir(%q)", p)
		assert.ErrorIs(t, w.Remove(p), fs.ErrNotExist, "Remove(%q)", p)
	}
}

func testRemove(t *testing.T, w regstore.WriteFS, o Options) {
	Put(t, w, "d/e/f", "x")
	assert.ErrorIs(t, w.Remove("d"), fs.ErrExist, "Remove(non-empty dir)")
	require.NoError(t, w.Remove("d/e/f"), "Remove(file)")
	_, err := fs.Stat(w, "d/e/f")
	assert.ErrorIs(t, err, fs.ErrNotExist, "Stat after Remove")
	for _, dir := range []string{"d/e", "d"} {
		err := w.Remove(dir)
		if o.ImplicitDirs && errors.Is(err, fs.ErrNotExist) {
			continue // the prefix vanished with its last object
		}
		require.NoError(t, err, "Remove(empty dir %s)", dir)
	}
	assert.Empty(t, Listing(t, w, "."))
}

func testReadDirSorted(t *testing.T, w regstore.WriteFS) {
	for _, n := range []string{"b", "a-b", "a", "_x", "a.b", "A", "0"} {
		Put(t, w, "dir/"+n+"/link", n)
	}
	Put(t, w, "dir/file", "f")
	entries, err := fs.ReadDir(w, "dir")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"0", "A", "_x", "a", "a-b", "a.b", "b", "file"}, names, "ReadDir(dir)")
	assert.True(t, entries[0].IsDir())
	assert.False(t, entries[len(entries)-1].IsDir())
}

func testFileInDirPath(t *testing.T, w regstore.WriteFS, o Options) {
	Put(t, w, "file", "x")
	before := Listing(t, w, ".")
	fw, err := w.Create("file/below")
	if o.ImplicitDirs && err == nil {
		// Create sends nothing; the store refuses the key when it is
		// published.
		_, err = io.WriteString(fw, "y")
		require.NoError(t, err, "Write below a file")
		err = fw.Commit()
	}
	assert.Error(t, err, "Create (or, with implicit directories, Commit) below a file")
	_, err = w.Open("file/below")
	assert.Error(t, err, "Open below a file")
	assert.Equal(t, before, Listing(t, w, "."))
}

func testConcurrentSameName(t *testing.T, w regstore.WriteFS) {
	const n = 16
	contents := make([]string, n)
	for i := range contents {
		contents[i] = strings.Repeat(fmt.Sprint(i%10), 4096+i)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			fw, err := w.Create("same/file")
			if err != nil {
				errs[i] = err
				return
			}
			if _, err := io.WriteString(fw, contents[i]); err != nil {
				errs[i] = err
				return
			}
			errs[i] = fw.Commit()
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "writer %d", i)
	}
	b, err := fs.ReadFile(w, "same/file")
	require.NoError(t, err)
	assert.Contains(t, contents, string(b), "content is one writer's whole content")
	entries, err := fs.ReadDir(w, "same")
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files remain")
}

func testFSTest(t *testing.T, w regstore.WriteFS) {
	files := []string{"a/b/c", "a/d", "e", "f/g/h/i"}
	for _, f := range files {
		Put(t, w, f, "content of "+f)
	}
	require.NoError(t, fstest.TestFS(w, files...))
}

func testRename(t *testing.T, w regstore.WriteFS) {
	r, ok := w.(regstore.RenameFS)
	if !ok {
		t.Skip("backend has no Rename")
	}
	Put(t, w, "src/file", "one")
	Put(t, w, "dst/existing", "two")
	require.NoError(t, r.Rename("src/file", "dst/existing"), "Rename over a file")
	b, err := fs.ReadFile(w, "dst/existing")
	require.NoError(t, err)
	assert.Equal(t, "one", string(b))
	_, err = fs.Stat(w, "src/file")
	assert.ErrorIs(t, err, fs.ErrNotExist, "old name after Rename")

	require.NoError(t, r.Rename("dst/existing", "new/parents/file"), "Rename into new directories")
	b, err = fs.ReadFile(w, "new/parents/file")
	require.NoError(t, err)
	assert.Equal(t, "one", string(b))

	assert.ErrorIs(t, r.Rename("missing", "x"), fs.ErrNotExist, "Rename(missing)")
	assert.ErrorIs(t, r.Rename("new/parents/file", "../x"), fs.ErrInvalid, "Rename to a bad path")
}

func testRemoveAll(t *testing.T, w regstore.WriteFS) {
	r, ok := w.(regstore.RemoveAllFS)
	if !ok {
		t.Skip("backend has no RemoveAll")
	}
	Put(t, w, "keep/a", "x")
	Put(t, w, "tree/a/b", "x")
	Put(t, w, "tree/c", "x")
	Put(t, w, "tree-sibling/d", "x")
	require.NoError(t, r.RemoveAll("tree"))
	assert.Equal(t, []string{"keep/", "keep/a=x", "tree-sibling/", "tree-sibling/d=x"}, Listing(t, w, "."))
	assert.NoError(t, r.RemoveAll("missing"), "RemoveAll(missing)")
	assert.ErrorIs(t, r.RemoveAll("../x"), fs.ErrInvalid, "RemoveAll(bad path)")
}

func testLink(t *testing.T, w regstore.WriteFS) {
	l, ok := w.(regstore.LinkFS)
	if !ok {
		t.Skip("backend has no Link")
	}
	Put(t, w, "src", "shared")
	require.NoError(t, l.Link("src", "dst/linked"))
	b, err := fs.ReadFile(w, "dst/linked")
	require.NoError(t, err)
	assert.Equal(t, "shared", string(b))
	assert.ErrorIs(t, l.Link("src", "dst/linked"), fs.ErrExist, "Link over an existing file")
	assert.ErrorIs(t, l.Link("missing", "dst/other"), fs.ErrNotExist, "Link(missing)")
}

func testChtimes(t *testing.T, w regstore.WriteFS) {
	c, ok := w.(regstore.ChtimesFS)
	if !ok {
		t.Skip("backend has no Chtimes")
	}
	Put(t, w, "f", "x")
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, c.Chtimes("f", when))
	fi, err := fs.Stat(w, "f")
	require.NoError(t, err)
	assert.True(t, when.Equal(fi.ModTime()), "ModTime = %v, want %v", fi.ModTime(), when)
	assert.ErrorIs(t, c.Chtimes("missing", when), fs.ErrNotExist)
}

// Clean reports whether no temporary file is left anywhere below dir.
func Clean(t testing.TB, fsys fs.FS, dir string) {
	t.Helper()
	for _, p := range Listing(t, fsys, dir) {
		name, _, _ := strings.Cut(p, "=")
		assert.False(t, strings.HasSuffix(path.Clean(name), ".tmp"), "temporary file left: %s", name)
	}
}

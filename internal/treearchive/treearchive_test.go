package treearchive_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/treearchive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// awkward is a tree of files the codec must round-trip exactly.
var awkward = map[string]string{
	"docker/registry/v2/repositories/a/_manifests/tags/t/current/link": "sha256:" + strings.Repeat("ab", 32),
	"docker/registry/v2/repositories/a/_uploads/u/startedat":           "2026-01-02T03:04:05Z",
	"nl/with-newline":  "line\n",
	"nl/only-newline":  "\n",
	"nl/two-newlines":  "x\n\n",
	"nl/empty":         "",
	"bin/nul":          "a\x00b",
	"bin/gzip":         "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
	"bin/crlf":         "a\r\nb",
	"tricky/marker":    "x\n-- fake --\ny",
	"tricky/marker0":   "-- fake --\n",
	"tricky/utf8":      "héllo ✓",
	"tricky/tab-space": "\t indented \t",
}

var awkwardDirs = []string{"empty/a/b", "docker/registry/v2/repositories/a/_manifests/revisions/sha256/ff"}

func makeAwkward(t *testing.T) string {
	root := filepath.Join(t.TempDir(), "root")
	for p, c := range awkward {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
	for _, d := range awkwardDirs {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755))
	}
	return root
}

// snapshot maps every path of fsys to its content; directories map to
// "<dir>".
func snapshot(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	m := map[string]string{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			m[p] = "<dir>"
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		m[p] = string(b)
		return err
	}))
	return m
}

// TestRoundTrip checks the codec on the awkward cases: no trailing newline,
// only a newline, empty files, NUL bytes, CRLF, embedded "-- x --" marker
// lines, UTF-8, empty directories, and hostile names.
func TestRoundTrip(t *testing.T) {
	root := makeAwkward(t)
	a, err := treearchive.FromDir(root, "comment\n")
	require.NoError(t, err)
	data := treearchive.Format(a)
	names := map[string]bool{}
	for _, f := range treearchive.Parse(data).Files {
		names[f.Name] = true
	}
	assert.True(t, names["docker/registry/v2/repositories/a/_manifests/tags/t/current/link"], "link files are text")
	assert.True(t, names["bin/nul base64"])
	assert.True(t, names["bin/crlf base64"])
	assert.True(t, names["tricky/marker base64"])
	assert.True(t, names["tricky/marker0 base64"])
	assert.True(t, names["empty/a/b/"])
	assert.False(t, names["empty/a/"], "only empty directories get an entry")
	assert.False(t, names["empty/"])
	assert.True(t, names["docker/registry/v2/repositories/a/_manifests/revisions/sha256/ff/"])
	assert.Contains(t, string(data), "-- nl/with-newline --\nline\n\n", "one newline is added")

	want := snapshot(t, os.DirFS(root))

	back := filepath.Join(t.TempDir(), "back")
	require.NoError(t, treearchive.ToDir(treearchive.Parse(data), back))
	assert.Equal(t, want, snapshot(t, os.DirFS(back)), "ToDir")

	// Formatting is stable.
	a2, err := treearchive.FromDir(back, "comment\n")
	require.NoError(t, err)
	assert.Equal(t, string(data), string(treearchive.Format(a2)))

	// Hostile names are refused.
	for _, bad := range []string{"../x", "/abs", "a/../../x", "a//b", "a/./b", ".", "a b"} {
		_, err := treearchive.Decode(&treearchive.Archive{Files: []treearchive.File{{Name: bad, Data: []byte("x\n")}}})
		assert.Error(t, err, bad)
	}
	_, err = treearchive.Decode(&treearchive.Archive{Files: []treearchive.File{{Name: "d/", Data: []byte("x\n")}}})
	assert.Error(t, err, "a directory entry with content")
}

// TestToFS loads the same archive into regstore backends through their
// write side only, empty directories included, and gets the same tree as
// ToDir (no placeholder or temporary file left behind).
func TestToFS(t *testing.T) {
	root := makeAwkward(t)
	a, err := treearchive.FromDir(root, "")
	require.NoError(t, err)
	want := snapshot(t, os.DirFS(root))

	mem := regstore.NewMemFS()
	require.NoError(t, treearchive.ToFS(a, mem))
	assert.Equal(t, want, snapshot(t, mem), "MemFS")

	dirRoot := t.TempDir()
	d, err := regstore.OpenDir(dirRoot)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, treearchive.ToFS(a, d))
	assert.Equal(t, want, snapshot(t, os.DirFS(dirRoot)), "Dir")

	p := filepath.Join(t.TempDir(), "tree.txtar")
	require.NoError(t, os.WriteFile(p, treearchive.Format(a), 0o644))
	mem2, err := treearchive.LoadMemFS(p)
	require.NoError(t, err)
	assert.Equal(t, want, snapshot(t, mem2), "LoadMemFS")
	loaded := filepath.Join(t.TempDir(), "loaded")
	require.NoError(t, treearchive.LoadDir(p, loaded))
	assert.Equal(t, want, snapshot(t, os.DirFS(loaded)), "LoadDir")

	require.NoError(t, os.WriteFile(p, nil, 0o644))
	_, err = treearchive.LoadMemFS(p)
	assert.Error(t, err, "empty archive file")
}

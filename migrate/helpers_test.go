package migrate_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Helpers shared by this package's tests.

// fuzzImportErrors are the causes the import functions document.
var fuzzImportErrors = []error{migrate.ErrInvalidSource, fs.ErrNotExist, regstore.ErrDigestMismatch,
	regstore.ErrSizeMismatch, regstore.ErrManifestInvalid, regstore.ErrManifestBlobUnknown, regstore.ErrInvalidDigest}

func mustRepo(t *testing.T, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

// pbBackends runs fn on a fresh, empty Dir and a fresh, empty MemFS.
func pbBackends(t *testing.T, fn func(t *testing.T, w regstore.WriteFS)) {
	t.Helper()
	t.Run("Dir", func(t *testing.T) {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err, "OpenDir(t.TempDir())")
		t.Cleanup(func() { d.Close() })
		fn(t, d)
	})
	t.Run("MemFS", func(t *testing.T) { fn(t, regstore.NewMemFS()) })
}

// pbSeed puts one unrelated blob, so that the blobs directory exists.
func pbSeed(t *testing.T, s *regstore.Store) {
	t.Helper()
	_, err := s.PutBlob(strings.NewReader("seed"), "", -1)
	require.NoError(t, err, "PutBlob(seed)")
}

func pbStore(t *testing.T, fsys fs.FS) *regstore.Store {
	t.Helper()
	s, err := regstore.Open(fsys)
	require.NoError(t, err, "Open(%T)", fsys)
	return s
}

// runCheck collects every problem Check yields.
func runCheck(t testing.TB, s *regstore.Store, linksOnly bool) []check.Problem {
	t.Helper()
	var out []check.Problem
	for p, err := range check.Problems(context.Background(), s, check.Options{LinksOnly: linksOnly, Now: func() time.Time { return kitNow }}) {
		require.NoError(t, err, "Check")
		out = append(out, p)
	}
	return out
}

// travDigests are digest strings that would escape or corrupt the
// layout if they became paths.
var travDigests = []string{
	"",
	"sha256:../../x",
	"sha256:" + strings.Repeat("../", 21) + "x", // 64 characters
	"sha256:../../" + goldenHex256[:58],         // 64 characters
	"sha256:" + goldenHex256[:30] + "/" + goldenHex256[31:],
	"sha256:" + goldenHex256[:62] + "/.",
	"sha256:" + strings.Repeat(".", 64),
	"sha256:" + goldenHex256 + "/../../../x",
	"sha256:/" + goldenHex256[1:],
	"sha256:" + strings.ToUpper(goldenHex256),
	"SHA256:" + goldenHex256,
	"../../sha256:" + goldenHex256,
	"sha256/../../..:" + goldenHex256,
	"/sha256:" + goldenHex256,
	"sha256:" + goldenHex256 + "\x00",
	"sha512:" + strings.Repeat("../", 42) + "xx", // 128 characters
	"tarsum.v1+sha256:" + goldenHex256,
	"md5:5d41402abc4b2a76b9719d911017c592",
}

// travOSListing lists everything below dir on the operating system without
// following symbolic links: "p/" for directories, "p -> target" for links,
// "p=content" for files.
func travOSListing(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			out = append(out, rel+"/")
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	require.NoError(t, err, "WalkDir(%q)", dir)
	return out
}

// travSymlinkFixture makes a Dir root and a sibling directory outside it that
// holds a secret, and returns both paths and their common parent.
func travSymlinkFixture(t *testing.T) (root, outside, parent string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	root, outside = t.TempDir(), t.TempDir()
	parent = filepath.Dir(root)
	require.Equal(t, parent, filepath.Dir(outside), "t.TempDir() siblings")
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o666))
	require.NoError(t, os.Mkdir(filepath.Join(outside, "sub"), 0o777))
	return root, outside, parent
}

// travUnchanged snapshots a backend (and, for a Dir, the directory that holds
// its root) and returns a function that checks both are as they were.
func travUnchanged(t *testing.T, w regstore.WriteFS) func(what string) {
	t.Helper()
	before := pbTree(t, w)
	var parent string
	var parentBefore []string
	if d, ok := w.(*regstore.Dir); ok {
		parent = filepath.Dir(d.Name())
		parentBefore = travOSListing(t, parent)
	}
	return func(what string) {
		t.Helper()
		assert.Equal(t, before, pbTree(t, w), "tree after %s", what)
		if parent != "" {
			assert.Equal(t, parentBefore, travOSListing(t, parent), "parent of the Dir root after %s", what)
		}
	}
}

// Digests of "hello", written out so that the golden paths below do not
// depend on the code under test.
const (
	goldenHex256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	goldenHex384 = "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f"
	goldenHex512 = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
)

// kitNow is the clock of every check in these tests: upload ages are
// measured from it.
var kitNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// pbTree is the whole listing of fsys, with long file contents replaced by
// their length and digest so that a failure prints readably.
func pbTree(t testing.TB, fsys fs.FS) []string {
	t.Helper()
	out := backendtest.Listing(t, fsys, ".")
	for i, l := range out {
		if name, content, ok := strings.Cut(l, "="); ok && len(content) > 64 {
			out[i] = fmt.Sprintf("%s=<%d bytes %s>", name, len(content), digest.FromString(content))
		}
	}
	return out
}

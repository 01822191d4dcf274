package regstore_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestHostileDigests: Store.Blob and Store.PutBlob refuse every hostile
// digest with ErrInvalidDigest before touching the backend or the reader.
func TestHostileDigests(t *testing.T) {
	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s := pbStore(t, w)
		pbSeed(t, s)
		check := travUnchanged(t, w)
		for _, h := range travDigests {
			d := digest.Digest(h)
			_, err := s.Blob(d)
			assert.ErrorIs(t, err, regstore.ErrInvalidDigest, "Blob(%q)", h)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Blob(%q)", h)
			if h == "" {
				continue // PutBlob's "digest unknown"
			}
			r := &pbUnreadable{}
			b, err := s.PutBlob(r, d, -1)
			assert.Nil(t, b, "PutBlob(%q)", h)
			assert.ErrorIs(t, err, regstore.ErrInvalidDigest, "PutBlob(%q)", h)
			assert.ErrorIs(t, err, fs.ErrInvalid, "PutBlob(%q)", h)
			assert.False(t, r.read.Load(), "PutBlob(%q) read its reader", h)
			_, err = s.PutBlob(strings.NewReader("x"), d, 1)
			assert.ErrorIs(t, err, regstore.ErrInvalidDigest, "PutBlob(x, %q, 1)", h)
		}
		check("hostile digests")
	})
}

var travRoots = []string{"../x", "..", "/abs", "/", "", "a/../../b", "a/..", "./a", "a/", "a//b", "docker/../../registry"}

// TestHostileLayoutRoot: a layout root that is not a valid unrooted path is
// refused by NewLayout and Open.
func TestHostileLayoutRoot(t *testing.T) {
	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		check := travUnchanged(t, w)
		for _, root := range travRoots {
			_, err := regstore.NewLayout(root)
			assert.ErrorIs(t, err, fs.ErrInvalid, "NewLayout(%q)", root)
			s, err := regstore.Open(w, regstore.WithLayoutRoot(root))
			assert.ErrorIs(t, err, fs.ErrInvalid, "Open(WithLayoutRoot(%q))", root)
			assert.Nil(t, s, "Open(WithLayoutRoot(%q))", root)
		}
		check("hostile layout roots")
	})
}

// travPaths are backend paths that are not valid unrooted slash paths.
var travPaths = append([]string{
	"../../etc/passwd", "/etc/passwd", "a/../../b", "a/b/../../../c",
	"../", "./", "a/.", "a/b/..", "//a", "a/b/",
}, backendtest.BadPaths...)

// TestHostileBackendPaths: every backend operation that takes a path
// refuses a path that is not fs.ValidPath with fs.ErrInvalid and changes
// nothing.
func TestHostileBackendPaths(t *testing.T) {
	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		backendtest.Put(t, w, "a/b", "x")
		backendtest.Put(t, w, "keep", "y")
		check := travUnchanged(t, w)
		when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, p := range travPaths {
			fw, err := w.Create(p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Create(%q)", p)
			if fw != nil {
				fw.Cancel()
			}
			assert.ErrorIs(t, w.Remove(p), fs.ErrInvalid, "Remove(%q)", p)
			if r, ok := w.(regstore.RemoveAllFS); assert.True(t, ok) {
				assert.ErrorIs(t, r.RemoveAll(p), fs.ErrInvalid, "RemoveAll(%q)", p)
			}
			if r, ok := w.(regstore.RenameFS); assert.True(t, ok) {
				assert.ErrorIs(t, r.Rename(p, "new"), fs.ErrInvalid, "Rename(%q, new)", p)
				assert.ErrorIs(t, r.Rename("keep", p), fs.ErrInvalid, "Rename(keep, %q)", p)
			}
			if l, ok := w.(regstore.LinkFS); assert.True(t, ok) {
				assert.ErrorIs(t, l.Link(p, "new"), fs.ErrInvalid, "Link(%q, new)", p)
				assert.ErrorIs(t, l.Link("keep", p), fs.ErrInvalid, "Link(keep, %q)", p)
			}
			if c, ok := w.(regstore.ChtimesFS); assert.True(t, ok) {
				assert.ErrorIs(t, c.Chtimes(p, when), fs.ErrInvalid, "Chtimes(%q)", p)
			}
			if p == "." {
				continue // a valid path for reading
			}
			_, err = w.Open(p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Open(%q)", p)
			_, err = fs.Stat(w, p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "Stat(%q)", p)
			_, err = fs.ReadFile(w, p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ReadFile(%q)", p)
			_, err = fs.ReadDir(w, p)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ReadDir(%q)", p)
		}
		check("hostile backend paths")
	})
}

// travPutFile writes content at name through w and commits it.
func travPutFile(w regstore.WriteFS, name, content string) error {
	fw, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(fw, content); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	return fw.Commit()
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

// TestSymlinkEscape: no operation of Dir follows a symbolic link out of its
// root, and nothing is written outside it.
func TestSymlinkEscape(t *testing.T) {
	root, outside, parent := travSymlinkFixture(t)
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "escape")))
	require.NoError(t, os.Symlink(filepath.Join("..", filepath.Base(outside)), filepath.Join(root, "relative-escape")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "secret-link")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "keep"), []byte("keep"), 0o666))
	d, err := regstore.OpenDir(root)
	require.NoError(t, err, "OpenDir(%q)", root)
	t.Cleanup(func() { d.Close() })

	secretInfo, err := os.Stat(filepath.Join(outside, "secret"))
	require.NoError(t, err)
	parentBefore := travOSListing(t, parent)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"Open(escape/secret)", func() error { _, err := d.Open("escape/secret"); return err }},
		{"Open(relative-escape/secret)", func() error { _, err := d.Open("relative-escape/secret"); return err }},
		{"Open(secret-link)", func() error { _, err := d.Open("secret-link"); return err }},
		{"Open(escape)", func() error { _, err := d.Open("escape"); return err }},
		{"ReadFile(escape/secret)", func() error { _, err := fs.ReadFile(d, "escape/secret"); return err }},
		{"ReadFile(secret-link)", func() error { _, err := fs.ReadFile(d, "secret-link"); return err }},
		{"Stat(escape/secret)", func() error { _, err := fs.Stat(d, "escape/secret"); return err }},
		{"ReadDir(escape)", func() error { _, err := fs.ReadDir(d, "escape"); return err }},
		{"Create(escape/new)", func() error { return travPutFile(d, "escape/new", "planted") }},
		{"Create(escape/sub/new)", func() error { return travPutFile(d, "escape/sub/new", "planted") }},
		{"Create(escape/secret)", func() error { return travPutFile(d, "escape/secret", "planted") }},
		{"Create(escape/deep/new)", func() error { return travPutFile(d, "escape/deep/new", "planted") }},
		{"Create(relative-escape/new)", func() error { return travPutFile(d, "relative-escape/new", "planted") }},
		{"Remove(escape/secret)", func() error { return d.Remove("escape/secret") }},
		{"RemoveAll(escape/sub)", func() error { return d.RemoveAll("escape/sub") }},
		{"RemoveAll(escape/secret)", func() error { return d.RemoveAll("escape/secret") }},
		{"Rename(escape/secret, stolen)", func() error { return d.Rename("escape/secret", "stolen") }},
		{"Rename(keep, escape/planted)", func() error { return d.Rename("keep", "escape/planted") }},
		{"Rename(keep, escape/secret)", func() error { return d.Rename("keep", "escape/secret") }},
		{"Link(escape/secret, stolen)", func() error { return d.Link("escape/secret", "stolen") }},
		{"Link(keep, escape/planted)", func() error { return d.Link("keep", "escape/planted") }},
		{"Chtimes(escape/secret)", func() error { return d.Chtimes("escape/secret", when) }},
		{"Chtimes(secret-link)", func() error { return d.Chtimes("secret-link", when) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Error(t, c.op(), c.name)
			assert.Equal(t, parentBefore, travOSListing(t, parent), "root and outside after %s", c.name)
		})
	}
	fi, err := os.Stat(filepath.Join(outside, "secret"))
	require.NoError(t, err)
	assert.Equal(t, secretInfo.ModTime(), fi.ModTime(), "mtime of the file outside the root")

	t.Run("Create(secret-link) replaces the link", func(t *testing.T) {
		// Committing over a symbolic link renames over the link itself:
		// the file outside is not written through it.
		require.NoError(t, travPutFile(d, "secret-link", "replaced"), "Create(secret-link)")
		assert.Equal(t, []string{"secret=secret", "sub/"}, travOSListing(t, outside), "outside after Create(secret-link)")
		fi, err := os.Lstat(filepath.Join(root, "secret-link"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "secret-link is a regular file after Create(secret-link)")
	})
	t.Run("RemoveAll(escape) removes the link", func(t *testing.T) {
		require.NoError(t, d.RemoveAll("escape"), "RemoveAll(escape)")
		assert.Equal(t, []string{"secret=secret", "sub/"}, travOSListing(t, outside), "outside after RemoveAll(escape)")
	})
}

// TestSymlinkedBlobs: a store whose blobs directory (or one blob's data
// file) is a symbolic link out of the root neither reads nor writes there.
func TestSymlinkedBlobs(t *testing.T) {
	hexDir := filepath.Join("sha256", goldenHex256[:2], goldenHex256)

	t.Run("blobs directory", func(t *testing.T) {
		root, outside, parent := travSymlinkFixture(t)
		require.NoError(t, os.MkdirAll(filepath.Join(outside, hexDir), 0o777))
		require.NoError(t, os.WriteFile(filepath.Join(outside, hexDir, "data"), []byte("hello"), 0o666))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "docker", "registry", "v2"), 0o777))
		require.NoError(t, os.Symlink(outside, filepath.Join(root, "docker", "registry", "v2", "blobs")))
		d, err := regstore.OpenDir(root)
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		s := pbStore(t, d)
		parentBefore := travOSListing(t, parent)

		_, err = s.Blob(golden256)
		assert.Error(t, err, "Blob(%s) through a symlinked blobs directory", golden256)
		for _, c := range []struct {
			content string
			want    digest.Digest
		}{
			{"hello", ""}, {"hello", golden256}, {"hello", golden512}, {"other", ""}, {"other", digest.FromString("other")},
		} {
			b, err := s.PutBlob(strings.NewReader(c.content), c.want, -1)
			assert.Error(t, err, "PutBlob(%s, %q) through a symlinked blobs directory", c.content, c.want)
			assert.Nil(t, b)
		}
		assert.Equal(t, parentBefore, travOSListing(t, parent), "root and outside after PutBlob")
	})

	t.Run("data file", func(t *testing.T) {
		root, outside, parent := travSymlinkFixture(t)
		require.NoError(t, os.WriteFile(filepath.Join(outside, "data"), []byte("hello"), 0o666))
		blobDir := filepath.Join(root, "docker", "registry", "v2", "blobs", hexDir)
		require.NoError(t, os.MkdirAll(blobDir, 0o777))
		require.NoError(t, os.Symlink(filepath.Join(outside, "data"), filepath.Join(blobDir, "data")))
		d, err := regstore.OpenDir(root)
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		s := pbStore(t, d)
		outsideBefore := travOSListing(t, outside)
		parentBefore := travOSListing(t, parent)

		_, err = s.Blob(golden256)
		assert.Error(t, err, "Blob(%s) with data symlinked out of the root", golden256)
		assert.Equal(t, parentBefore, travOSListing(t, parent), "root and outside after Blob")

		// Putting the blob replaces the link inside the root and never
		// writes through it.
		b, err := s.PutBlob(strings.NewReader("hello"), golden256, -1)
		require.NoError(t, err, "PutBlob(hello, %s) over a symlinked data file", golden256)
		assert.NoError(t, b.Verify(), "Verify() after PutBlob over a symlinked data file")
		fi, err := os.Lstat(filepath.Join(blobDir, "data"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "data is a regular file after PutBlob")
		assert.Equal(t, outsideBefore, travOSListing(t, outside), "outside after PutBlob")
		backendtest.Clean(t, d, ".")
	})
}

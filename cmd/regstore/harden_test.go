package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// osPath is the operating-system path of a layout path of tr.
func (tr *tree) osPath(p string) string { return filepath.Join(tr.dir, filepath.FromSlash(p)) }

// lsnapshot maps every path below dir to its content, or to its link's
// destination for a symbolic link (not followed).
func lsnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			dst, err := os.Readlink(p)
			require.NoError(t, err)
			out[p] = "-> " + dst
		case d.IsDir():
			out[p] = "dir"
		default:
			raw, err := os.ReadFile(p)
			require.NoError(t, err)
			out[p] = string(raw)
		}
		return nil
	}))
	return out
}

// Item 2: rm through a symbolic link inside the tree refuses (exit 2) and
// changes nothing.
func TestRmRefusesSymlinkInTree(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, os.Symlink("app", tr.osPath(tr.root.Layout().Repository("team/old"))))
	snapshot := lsnapshot
	before := snapshot(t, tr.dir)
	for _, ref := range []string{"team/old", "team/old:v1", "team/old@" + string(tr.cur.Digest())} {
		_, errOut, code := runCLI(t, "rm", tr.dir, ref)
		assert.Equal(t, 2, code, "rm %s", ref)
		assert.Contains(t, errOut, "symbolic link inside the layout", "rm %s", ref)
		assert.Equal(t, before, snapshot(t, tr.dir), "rm %s changed the tree", ref)
	}
	// check names it, inspect warns.
	got := runJSON(t, 1, "check", "--links-only", "--json", tr.dir)
	assert.Contains(t, kindsOf(t, got["problems"]), "symlink-in-tree")
	assert.Contains(t, runOK(t, "inspect", tr.dir), "warning: list repositories")
}

// copyLinks writes every link of repository from again below the
// directory of name, by layout paths.
func copyLinks(t *testing.T, s *regstore.Store, from, name string) {
	t.Helper()
	w, err := s.Writer()
	require.NoError(t, err)
	src, dst := s.Layout().Repository(from), s.Layout().Repository(name)
	require.NoError(t, regstore.WalkFiles(s.FS(), src, func(p string, _ fs.FileInfo) error {
		d, err := regstore.ReadLink(s.FS(), p)
		if err != nil {
			return err
		}
		return regstore.WriteLink(w, dst+strings.TrimPrefix(p, src), d)
	}))
}

// Item 1: gc keeps what a repository it cannot name references, in both
// modes, says so, and check reports the name (exit 1).
func TestGCKeepsUnnamedRepository(t *testing.T) {
	tr := buildTree(t)
	copyLinks(t, tr.root, "team/app/web", "tagt/App")
	require.NoError(t, tr.root.DeleteRepository("team/app/web"))
	for _, mode := range [][]string{{}, {"--delete-untagged"}} {
		out := runOK(t, append(append([]string{"gc", "--grace=-1s"}, mode...), tr.dir)...)
		assert.Contains(t, out, "kept everything of tagt/App", "gc %v", mode)
		for ref := range tr.web.References() {
			_, err := os.Stat(tr.osPath(tr.root.Layout().BlobData(ref.Digest)))
			assert.NoError(t, err, "gc %v: blob %s of the unnamed repository", mode, ref.Digest)
		}
		_, err := os.Stat(tr.osPath(tr.root.Layout().BlobData(tr.web.Digest())))
		assert.NoError(t, err, "gc %v: its manifest", mode)
	}
	got := runJSON(t, 1, "check", "--links-only", "--json", tr.dir)
	assert.Contains(t, kindsOf(t, got["problems"]), "name-invalid")
	assert.Contains(t, runOK(t, "inspect", tr.dir), `repository directory "tagt/App": not a valid repository name`)
}

// Item 3: a revision link naming another digest makes gc refuse (exit 2)
// in both modes, and check names it.
func TestGCRefusesMismatchedRevisionLinkCLI(t *testing.T) {
	tr := buildTree(t)
	w, err := tr.root.Writer()
	require.NoError(t, err)
	require.NoError(t, regstore.WriteLink(w, tr.root.Layout().RevisionLink("team/app", tr.cur.Digest()), tr.old.Digest()))
	before := snapshot(t, tr.dir)
	for _, mode := range [][]string{{}, {"--delete-untagged"}} {
		_, errOut, code := runCLI(t, append(append([]string{"gc", "--grace=-1s"}, mode...), tr.dir)...)
		assert.Equal(t, 2, code, "gc %v", mode)
		assert.Contains(t, errOut, "corrupt link file", "gc %v", mode)
		assert.Equal(t, before, snapshot(t, tr.dir), "gc %v changed the tree", mode)
	}
	got := runJSON(t, 1, "check", "--links-only", "--json", tr.dir)
	assert.Contains(t, kindsOf(t, got["problems"]), "link-mismatch")
}

// Item 4: blob data that cannot be read (a symbolic link leaving the
// root) makes check exit 1 with blob-unreadable, not "no problems found".
func TestCheckUnreadableBlobCLI(t *testing.T) {
	tr := buildTree(t)
	p := tr.osPath(tr.root.Layout().BlobData(tr.loose.Digest()))
	outside := filepath.Join(t.TempDir(), "data")
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(outside, raw, 0o666))
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Symlink(outside, p))
	got := runJSON(t, 1, "check", "--json", tr.dir)
	assert.Contains(t, kindsOf(t, got["problems"]), "blob-unreadable")
	assert.Contains(t, kindsOf(t, got["problems"]), "symlink-in-tree")
}

//go:build unix

package regstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regstore/regstore"
)

// TestDirGivesNewFilesTheRootsOwner runs as root: what the Dir creates in
// a directory owned by another user belongs to that user, with the
// registry's modes (0666 and 0777 less the umask).
func TestDirGivesNewFilesTheRootsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 54321, 54322
	dir := t.TempDir()
	require.NoError(t, os.Chown(dir, uid, gid))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "docker/registry/v2"), 0o755))
	require.NoError(t, os.Chown(filepath.Join(dir, "docker"), uid, gid))
	require.NoError(t, os.Chown(filepath.Join(dir, "docker/registry"), uid, gid))
	require.NoError(t, os.Chown(filepath.Join(dir, "docker/registry/v2"), uid, gid))
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	gotUID, gotGID, ok := d.Owner()
	require.True(t, ok)
	assert.Equal(t, uid, gotUID)
	assert.Equal(t, gid, gotGID)

	s, err := regstore.Open(d)
	require.NoError(t, err)
	repo, err := s.Repository("team/app")
	require.NoError(t, err)
	_, err = repo.PutBlob(strings.NewReader("layer"), "", -1) // Create: blob data, layer link
	require.NoError(t, err)
	require.NoError(t, d.Rename("docker/registry/v2/repositories/team/app/_layers", "moved/a/b")) // Rename's directories
	require.NoError(t, d.Link("moved/a/b/sha256/"+firstLink(t, dir), "linked/x/link"))
	b, err := d.Batch() // the batch's directories and files
	require.NoError(t, err)
	w, err := b.Create("batch/c/file")
	require.NoError(t, err)
	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	require.NoError(t, b.Publish())
	require.NoError(t, b.Close())

	umask := syscall.Umask(0)
	syscall.Umask(umask)
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		require.NoError(t, err)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		assert.Equal(t, uint32(uid), st.Uid, "owner of %s", rel)
		assert.Equal(t, uint32(gid), st.Gid, "group of %s", rel)
		if fi.IsDir() && !strings.HasPrefix(rel, "docker") && rel != "." || strings.HasPrefix(rel, "docker/registry/v2/") && fi.IsDir() {
			assert.Equal(t, fs.FileMode(0o777&^umask), fi.Mode().Perm(), "mode of %s", rel)
		}
		if fi.Mode().IsRegular() {
			assert.Equal(t, fs.FileMode(0o666&^umask), fi.Mode().Perm(), "mode of %s", rel)
		}
		n++
		return nil
	}))
	assert.Greater(t, n, 15, "entries checked")
}

// firstLink is the name, below _layers/sha256, of the first layer link.
func firstLink(t *testing.T, dir string) string {
	entries, err := os.ReadDir(filepath.Join(dir, "moved/a/b/sha256"))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	return entries[0].Name() + "/link"
}

func TestDirOwnerIsTheLayoutRoots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir() // root's own
	v2 := filepath.Join(dir, "docker/registry/v2")
	require.NoError(t, os.MkdirAll(v2, 0o755))
	require.NoError(t, os.Chown(v2, 4242, 4343))
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	uid, gid, ok := d.Owner()
	assert.True(t, ok)
	assert.Equal(t, []int{4242, 4343}, []int{uid, gid})
}

func TestDirKeepsOwnerWhenTheRootIsOurs(t *testing.T) {
	d, err := regstore.OpenDir(t.TempDir())
	require.NoError(t, err)
	defer d.Close()
	_, _, ok := d.Owner()
	assert.False(t, ok, "a directory of the process's own user: nothing to change")
}

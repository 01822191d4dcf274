package regstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// symlinkTree is a Dir store with team/app tagged v1 and v2, and
// repositories/team/old a symbolic link to app.
func symlinkTree(t *testing.T) (s *regstore.Store, root string) {
	t.Helper()
	root = t.TempDir()
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	s, err = regstore.Open(d)
	require.NoError(t, err)
	app, err := s.Repository("team/app")
	require.NoError(t, err)
	regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64)}}, "v1")
	regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 64)}}, "v2")
	require.NoError(t, os.Symlink("app", filepath.Join(root, filepath.FromSlash(s.Layout().Repository("team/old")))))
	return s, root
}

// snapshotFiles lists every path below root with its mode type.
func snapshotFiles(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		out[p] = d.Type()
		return nil
	}))
	return out
}

// Item 2: no mutation follows a symbolic link inside the tree. With
// repositories/team/old a link to app, every removal through team/old is
// refused with an error wrapping ErrSymlink, and nothing changes.
func TestMutationsRefuseSymlinkInTree(t *testing.T) {
	s, root := symlinkTree(t)
	before := snapshotFiles(t, root)
	old, err := s.Repository("team/old")
	require.NoError(t, err)
	v2, err := old.Tag("v2")
	require.NoError(t, err)
	d, err := v2.Digest() // reads follow the link, as the registry's do
	require.NoError(t, err)
	m, err := old.Manifest(d)
	require.NoError(t, err)

	for name, op := range map[string]func() error{
		"DeleteRepository": func() error { return s.DeleteRepository("team/old") },
		"MoveRepository":   func() error { return s.MoveRepository("team/old", "team/new") },
		"MoveRepository to": func() error {
			return s.MoveRepository("team/app", "team/old/x")
		},
		"Tag.Delete":     v2.Delete,
		"Tag.Set":        func() error { return v2.Set(d) },
		"DeleteManifest": func() error { return old.DeleteManifest(d) },
		"UnlinkBlob":     func() error { return old.UnlinkBlob(m.Layers()[0].Digest) },
	} {
		err := op()
		assert.ErrorIs(t, err, regstore.ErrSymlink, name)
		assert.ErrorIs(t, err, fs.ErrInvalid, name)
		assert.Equal(t, before, snapshotFiles(t, root), "%s changed the tree", name)
	}

	// A link deeper down: a tag directory of team/app that is a link to
	// another tag. Deleting the repository refuses; deleting the other tag
	// is fine.
	require.NoError(t, os.Remove(filepath.Join(root, filepath.FromSlash(s.Layout().Repository("team/old")))))
	require.NoError(t, os.Symlink("v1", filepath.Join(root, filepath.FromSlash(s.Layout().Tag("team/app", "alias")))))
	before = snapshotFiles(t, root)
	app, err := s.Repository("team/app")
	require.NoError(t, err)
	alias, err := app.Tag("alias")
	require.NoError(t, err)
	assert.ErrorIs(t, alias.Delete(), regstore.ErrSymlink)
	assert.ErrorIs(t, s.DeleteRepository("team/app"), regstore.ErrSymlink)
	assert.Equal(t, before, snapshotFiles(t, root), "refused deletes changed the tree")
}

package regstore_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorSaysPathOnce: an error whose cause is a path error for the same
// path names the path once, and still matches the cause.
func TestErrorSaysPathOnce(t *testing.T) {
	for name, fsys := range map[string]regstore.WriteFS{"memfs": regstore.NewMemFS(), "dir": openDir(t)} {
		s, err := regstore.Open(fsys)
		require.NoError(t, err)
		r, err := s.Repository("team/app")
		require.NoError(t, err)
		tag, err := r.Tag("v1")
		require.NoError(t, err)
		_, err = tag.Resolve()
		require.Error(t, err)
		assert.ErrorIs(t, err, fs.ErrNotExist, name)
		p := s.Layout().TagCurrent("team/app", "v1")
		assert.Equal(t, 1, strings.Count(err.Error(), p), "%s: %s", name, err)
		assert.True(t, strings.HasPrefix(err.Error(), "resolve tag team/app:v1 ("+p+"): open: "), "%s: %s", name, err)
	}
	// A cause for another path keeps its path.
	e := &regstore.Error{Op: "copy", Path: "a/b", Err: &fs.PathError{Op: "open", Path: "c/d", Err: fs.ErrNotExist}}
	assert.Equal(t, "copy (a/b): open c/d: file does not exist", e.Error())
	e = &regstore.Error{Op: "repair", Path: "a/b", Err: &regstore.Error{Op: "read link", Path: "a/b", Err: errors.New("boom")}}
	assert.Equal(t, "repair (a/b): read link: boom", e.Error())
}

func openDir(t *testing.T) regstore.WriteFS {
	d, err := regstore.OpenDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

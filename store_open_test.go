package regstore_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regstore/regstore"
)

func TestOpenRefusesBackendWithoutLayout(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("x")}
	dir := &fstest.MapFile{Mode: fs.ModeDir | 0o755}
	cases := []struct {
		name string
		fsys fstest.MapFS
		opts []regstore.Option
		want error // nil: opens
	}{
		{"empty backend is a new tree", fstest.MapFS{}, nil, nil},
		{"layout root present", fstest.MapFS{"docker/registry/v2/repositories": dir}, nil, nil},
		{"empty layout root", fstest.MapFS{"docker/registry/v2": dir}, nil, nil},
		{"other things", fstest.MapFS{"passwd": file, "hosts": file, "ssl/x": file, "y": file}, nil, regstore.ErrNoLayout},
		{"the docker folder", fstest.MapFS{"registry/v2/repositories": dir}, nil, regstore.ErrNoLayout},
		{"other things, Create", fstest.MapFS{"passwd": file}, []regstore.Option{regstore.Create()}, nil},
		{"v2 folder itself", fstest.MapFS{"blobs": dir}, []regstore.Option{regstore.WithLayoutRoot(".")}, nil},
		{"v2 folder itself, repositories only", fstest.MapFS{"repositories/a": dir}, []regstore.Option{regstore.WithLayoutRoot(".")}, nil},
		{"v2 folder expected, other things", fstest.MapFS{"passwd": file}, []regstore.Option{regstore.WithLayoutRoot(".")}, regstore.ErrNoLayout},
		{"a file where the layout root should be", fstest.MapFS{"docker/registry/v2": file}, nil, regstore.ErrNoLayout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := regstore.Open(c.fsys, c.opts...)
			if c.want == nil {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.ErrorIs(t, err, c.want)
			assert.ErrorIs(t, err, fs.ErrNotExist, "ErrNoLayout is a not-exist error")
			var e *regstore.Error
			require.True(t, errors.As(err, &e), "a *regstore.Error")
			assert.Equal(t, "open", e.Op)
			assert.Nil(t, s)
		})
	}
	t.Run("names what it found", func(t *testing.T) {
		_, err := regstore.Open(fstest.MapFS{"a": file, "b": file, "c": file, "d": file, "e": file})
		require.ErrorIs(t, err, regstore.ErrNoLayout)
		assert.True(t, strings.Contains(err.Error(), "found a, b, c and 2 more"), err.Error())
		assert.Contains(t, err.Error(), "want docker/registry/v2")
	})
	t.Run("first write creates the layout with Create", func(t *testing.T) {
		m := regstore.NewMemFS()
		w, err := m.Create("unrelated")
		require.NoError(t, err)
		_, err = w.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, w.Commit())
		_, err = regstore.Open(m)
		require.ErrorIs(t, err, regstore.ErrNoLayout)
		s, err := regstore.Open(m, regstore.Create())
		require.NoError(t, err)
		_, err = s.PutBlob(strings.NewReader("hello"), "", -1)
		require.NoError(t, err)
		_, err = regstore.Open(m)
		require.NoError(t, err, "the layout exists now")
	})
}

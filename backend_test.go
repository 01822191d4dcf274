package regstore_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newDir(t *testing.T) regstore.WriteFS {
	d, err := regstore.OpenDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func newMem(*testing.T) regstore.WriteFS { return regstore.NewMemFS() }

func TestBackendContract(t *testing.T) {
	t.Run("Dir", func(t *testing.T) { backendtest.Run(t, newDir) })
	t.Run("MemFS", func(t *testing.T) { backendtest.Run(t, newMem) })
}

// TestReadOnlyFS checks that a plain fs.FS is read like any backend and
// refuses every write with errors.ErrUnsupported.
func TestReadOnlyFS(t *testing.T) {
	d := digest.FromString("layer")
	hex := d.Encoded()
	fsys := fstest.MapFS{
		"docker/registry/v2/blobs/sha256/" + hex[:2] + "/" + hex + "/data": {Data: []byte("layer")},
	}
	s, err := regstore.Open(fsys)
	require.NoError(t, err)
	b, err := s.Blob(d)
	require.NoError(t, err, "Blob(%s)", d)
	assert.Equal(t, int64(5), b.Size())
	assert.NoError(t, b.Verify())

	_, err = s.PutBlob(strings.NewReader("x"), "", -1)
	assert.ErrorIs(t, err, errors.ErrUnsupported, "PutBlob on a read-only fs.FS")
	var e *regstore.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "put blob", e.Op)
	assert.Len(t, fsys, 1, "read-only tree unchanged")
	_, err = s.Blob(digest.FromString("other"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

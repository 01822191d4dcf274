package s3_test

import (
	"io/fs"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackendContract(t *testing.T) {
	needServer(t)
	backendtest.RunOptions(t, backendtest.Options{ImplicitDirs: true}, func(t *testing.T) regstore.WriteFS {
		return newFS(t, uniqueRoot("contract"))
	})
}

// TestObjectStoreDirectories checks the object-store side of the two
// skipped contract subtests: what a suite option for implicit directories
// would check.
func TestObjectStoreDirectories(t *testing.T) {
	w := newFS(t, uniqueRoot("dirs"))
	backendtest.Put(t, w, "d/e/f", "x")
	assert.ErrorIs(t, w.Remove("d"), fs.ErrExist, "Remove(non-empty dir)")
	assert.ErrorIs(t, w.Remove("d/e"), fs.ErrExist, "Remove(non-empty dir)")
	require.NoError(t, w.Remove("d/e/f"), "Remove(file)")
	for _, dir := range []string{"d/e/f", "d/e", "d"} {
		_, err := fs.Stat(w, dir)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Stat(%q) after the last object went", dir)
		assert.ErrorIs(t, w.Remove(dir), fs.ErrNotExist, "Remove(%q) after the last object went", dir)
	}
	assert.Empty(t, backendtest.Listing(t, w, "."))

	backendtest.Put(t, w, "file", "x")
	before := backendtest.Listing(t, w, ".")
	fw, err := w.Create("file/below")
	require.NoError(t, err, "Create below an object sends nothing")
	_, err = fw.Write([]byte("y"))
	require.NoError(t, err)
	require.NoError(t, fw.Cancel())
	_, err = w.Open("file/below")
	assert.ErrorIs(t, err, fs.ErrNotExist, "Open below a file")
	assert.Equal(t, before, backendtest.Listing(t, w, "."))
	fw, err = w.Create("file/below")
	require.NoError(t, err)
	_, err = fw.Write([]byte("y"))
	require.NoError(t, err)
	// versitygw (like MinIO) refuses a key below an object; AWS S3 would
	// keep both.
	assert.Error(t, fw.Commit(), "Commit below an object on versitygw")
	assert.Equal(t, before, backendtest.Listing(t, w, "."))
}

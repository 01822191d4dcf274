package usage_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/require"
)

// Helpers shared by this package's tests.

// kitBackends are the backends every kit test runs on. Trees are built in
// memory and then loaded into the backend: as is for MemFS, copied with
// regstoretest.WriteTree (no fsync per file, which would make the tests
// slow) into a fresh directory for Dir.
var kitBackends = []struct {
	name string
	load func(t testing.TB, m *regstore.MemFS) regstore.WriteFS
}{
	{"MemFS", func(_ testing.TB, m *regstore.MemFS) regstore.WriteFS { return m }},
	{"Dir", func(t testing.TB, m *regstore.MemFS) regstore.WriteFS {
		root := t.TempDir()
		require.NoError(t, regstoretest.WriteTree(m, root), "WriteTree")
		d, err := regstore.OpenDir(root)
		require.NoError(t, err, "OpenDir")
		t.Cleanup(func() { d.Close() })
		return d
	}},
}

func kitRepo(t testing.TB, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

const (
	kitUploadID   = "019a2f3e-7b1c-7d2e-8f3a-4b5c6d7e8f90"
	kitTempSuffix = ".0b9d8f4e-5c1a-4d7e-9a63-2f1e8c7b6a50.tmp"
)

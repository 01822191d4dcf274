package gc_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/require"
)

// Helpers shared by this package's tests.

func mustRepo(t *testing.T, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

func ptr[T any](v T) *T { return &v }

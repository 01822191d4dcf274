package backendtest_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
)

// TestMemFS runs the suite as a backend author would, on the in-memory
// backend.
func TestMemFS(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) regstore.WriteFS { return regstore.NewMemFS() })
}

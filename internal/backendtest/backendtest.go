// Package backendtest forwards to the exported contract suite,
// [github.com/regstore/regstore/regstoretest/backendtest], for the tests
// in this module that still import it here.
//
// Deprecated: import regstoretest/backendtest.
package backendtest

import (
	"io/fs"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
)

// Options is [backendtest.Options].
type Options = backendtest.Options

// BadPaths is [backendtest.BadPaths].
var BadPaths = backendtest.BadPaths

// Run is [backendtest.Run].
func Run(t *testing.T, newFS func(t *testing.T) regstore.WriteFS) { backendtest.Run(t, newFS) }

// RunOptions is [backendtest.RunOptions].
func RunOptions(t *testing.T, opts Options, newFS func(t *testing.T) regstore.WriteFS) {
	backendtest.RunOptions(t, opts, newFS)
}

// Put is [backendtest.Put].
func Put(t testing.TB, w regstore.WriteFS, name, content string) {
	t.Helper()
	backendtest.Put(t, w, name, content)
}

// Listing is [backendtest.Listing].
func Listing(t testing.TB, fsys fs.FS, dir string) []string {
	t.Helper()
	return backendtest.Listing(t, fsys, dir)
}

// Clean is [backendtest.Clean].
func Clean(t testing.TB, fsys fs.FS, dir string) {
	t.Helper()
	backendtest.Clean(t, fsys, dir)
}

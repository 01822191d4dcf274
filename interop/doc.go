// Package interop holds the interoperability tests of regstore against real
// peers: the CNCF Distribution registry (v3.1.2 and 2.8.2), crane, skopeo and
// umoci. Everything lives in _test.go files; see README.md for the cases.
// The registry-written trees under ../testdata are tree archives, read and
// written with github.com/regstore/regstore/internal/treearchive.
package interop

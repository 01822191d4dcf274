// Package regstoretest builds registry trees for tests: real, pullable
// images, indexes and referrers pushed through the regstore API (Push,
// PushIndex, WriteImage, WriteIndex), generated trees of any size
// (Generate), and broken trees, one kind of damage per call, as the
// integrity check classifies them (DanglingLink, CorruptBlob, TempFile...).
//
// Names: PushX takes the test's testing.TB and fails the test on an error;
// WriteX returns the error instead, for fixtures, generators and examples.
//
// It is not a registry and not a mock: everything it writes goes through
// the store's backend exactly as the regstore package writes it, so the
// trees are what a registry serves. The backend contract suite is in the
// sub-package backendtest.
package regstoretest

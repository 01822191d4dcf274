// Package crashtest holds the crash-consistency suite of the model and of
// every tool together: each mutating operation (handle writes and deletes,
// gc.Sweep, check.Repair, the imports and Copy) is crashed at every write
// through internal/faultfs, and the tree left behind must hold no pointer
// to anything missing and no corrupt blob, and finish cleanly when run
// again. It has no code of its own beyond the tests.
package crashtest

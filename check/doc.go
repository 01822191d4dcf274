// Package check finds damage in a registry tree and repairs it.
// [Problems] walks the tree once and yields every problem as it is found
// (dangling and corrupt links, missing or corrupt blob data, manifests that
// reference what is not there, tags their index does not record, leftovers
// of interrupted writes, names regstore cannot name, symbolic links, links
// contradicting their path, unreadable data), with an optional re-hash of
// every blob. [Repair]
// acts on those problems, each repair chosen on its own, pointers removed
// before what they point at, quarantining instead of deleting what might
// still be wanted.
//
// It is built only on the exported API of package regstore. It is not a
// garbage collector: what is merely unreferenced is reported (blob-orphan)
// and left to the gc package.
package check

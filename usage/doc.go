// Package usage accounts for the space a registry tree takes: [Measure]
// reports, per repository and per tag, the bytes referenced, unique and
// shared, and what deleting each would free; and, for the whole store, what
// tags reach, what only untagged manifests reach, and what nothing reaches.
//
// It is built only on the exported API of package regstore. It reads, and
// never changes, the tree; the bytes it reports as freed are what a
// collection by the gc package would remove.
package usage

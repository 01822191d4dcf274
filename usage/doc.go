// Package usage accounts for the space a registry tree takes: per
// repository and per tag, the bytes referenced, unique and shared, and what
// deleting each would free; and, for the whole store, what tags reach, what
// only untagged manifests reach, and what nothing reaches.
//
// [Account] makes a first pass over the store and keeps, per blob, only a
// 32-byte key, its size and a few flags (about 41 bytes, nothing per
// repository or tag); [Accounting.Repositories] then yields each
// repository's accounting in turn, reading it again, so that memory stays
// bounded by the blob table plus one repository. [Measure] collects it all
// into a [Report].
//
// It is built only on the exported API of package regstore. It reads, and
// never changes, the tree; the bytes it reports as freed are what a
// collection by the gc package would remove. It is not a consistent
// snapshot: a tree written meanwhile gives figures that mix its states.
package usage

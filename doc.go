// Package regstore reads and writes the on-disk "v2 storage layout" of the
// CNCF Distribution registry (registry:2, distribution 2.8 and v3), the tree
// a registry keeps under its rootdirectory, byte-compatibly and without a
// registry process.
//
// [OpenPath] opens a registry directory in one call (the rootdirectory or
// its docker/registry/v2), and [Store.Close] releases it. [Open] opens a
// [Store] over any backend: [OpenDir] for a directory, [NewMemFS] for
// memory, or any read-only [io/fs.FS]. From it come typed handles:
// [Repository], [Tag], [Manifest] and [Blob], and iterators over them.
// [Repository.PushImage] writes an image (config and layers, then the
// manifest it builds, then tags) as a push does; [Blob.ReadAll] reads a
// small blob whole, verified.
//
// # Layout
//
// Every path is built by [Layout]. Below the layout root
// (docker/registry/v2 under the registry's rootdirectory):
//
//	blobs/<alg>/<hex[:2]>/<hex>/data                   blob content, canonical sha256
//	repositories/<name>/
//	    _layers/<alg>/<hex>/link                       blob is in the repository
//	    _manifests/revisions/<alg>/<hex>/link          manifest is in the repository
//	    _manifests/tags/<tag>/current/link             what the tag points at
//	    _manifests/tags/<tag>/index/<alg>/<hex>/link   what it has pointed at
//	    _uploads/<id>/{data,startedat,hashstates/...}  unfinished uploads
//
// A link file holds exactly "<alg>:<hex>", with no newline. Names are
// validated against the v3 grammar and digests with go-digest before any
// path is built, so no input can make a path that escapes its place.
//
// # Backends
//
// The read side of a backend is an [io/fs.FS]. The write side, [WriteFS], is
// two operations: Create, which returns a [FileWriter] whose content becomes
// visible at its name only on Commit, atomically; and Remove. That suits a
// directory (temporary file, fsync, rename, fsync of the directory) and an
// object store with no rename (one PUT) alike. Optional upgrades are found by
// type assertion: [RenameFS], [RemoveAllFS], [LinkFS], [ChtimesFS].
// The contract suite every backend passes is exported for backend authors:
// [github.com/regstore/regstore/regstoretest/backendtest].
//
// # Atomicity and concurrency
//
// Every file is published whole or not at all, and writes go in the order
// the registry uses, bottom-up: blob data, then the link to it; manifest
// data, then its revision link, then each tag's index entry, then its
// current link. Deletes go top-down. So a reader, including a live registry
// sharing the tree, never follows a pointer to something missing. Blob
// content is hashed while it is written and published only when it matches.
// No lock is taken: as in the registry, the last of two concurrent tag
// writes wins.
//
// # Iterators
//
// Iterators are methods that return [iter.Seq2] of (value, error), named for
// what they yield: [Store.Repositories], [Store.Blobs], [Store.Walk],
// [Repository.Tags], [Repository.Manifests], [Repository.Layers],
// [Repository.Uploads], [Tag.History]. They re-read the backend each time,
// yield in a documented order, and end after their first error. Check the
// error before using the value:
//
//	for repo, err := range store.Repositories() {
//		if err != nil {
//			return err
//		}
//		fmt.Println(repo.Name())
//	}
//
// # Tools beside the model
//
// This package is the model only. The tools are packages beside it, built
// on nothing but its exported API, as a third-party tool would be:
//
//	gc       garbage collection (mark, sweep with a grace window) and upload purging
//	check    integrity check of the whole tree, and repair
//	usage    space accounting per repository and tag
//	migrate  OCI layout, docker archive and skopeo dir import and export; store-to-store copy
//
// The fast paths those tools need are exported here for any tool:
// [Store.BlobFiles] (a flat blob listing with sizes and ages),
// [WalkLinks] (link digests by path, without reading the links),
// [ReadLink], [ReadFileMax], [Store.Manifest] (a manifest by its blob data),
// [Layout.Classify], and the backend helpers [WalkFiles], [WriteFile],
// [WriteLink], [Rename], [Remove] and [RemoveAll], which use a backend's
// optional upgrades and fall back when it has none.
//
// # Errors
//
// Errors are [*Error] values naming the operation, repository, reference
// and path, wrapping a cause that [errors.Is] can match: [io/fs.ErrNotExist]
// for anything missing, [io/fs.ErrInvalid] (through [ErrInvalidName],
// [ErrInvalidTag], [ErrInvalidDigest]) for bad input, [errors.ErrUnsupported]
// for writes to a read-only backend, and this package's integrity sentinels
// such as [ErrCorruptLink] and [ErrDigestMismatch].
package regstore

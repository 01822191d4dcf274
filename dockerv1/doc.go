// Package dockerv1 reads the storage of the legacy Python docker-registry
// (the v1 registry) and converts it, offline, into the v2 layout of a
// regstore.Store.
//
// # The v1 tree
//
// The tree is read from any fs.FS: a directory, a regstore backend, an
// object store bucket. Its folder (the registry's storage_path) holds:
//
//	images/<id>/json          the image json, as the client pushed it
//	images/<id>/layer         the layer: a tar, or (earliest clients) gzip, bzip2 or xz
//	images/<id>/ancestry      JSON list of ids, the image first, its base last
//	images/<id>/_checksum     JSON list like ["sha256:<hex>"], or one bare string
//	images/<id>/_inprogress   present while a push is unfinished
//	images/<id>/_files, _diff caches of the layer's file list (ignored)
//	repositories/<namespace>/<name>/tag_<tag>       the image id, raw
//	repositories/<namespace>/<name>/tag<tag>_json   {"last_update": <unix seconds>, ...}
//	repositories/<namespace>/<name>/json            the same, for "latest"
//	repositories/<namespace>/<name>/_index_images   JSON list of {"id": ...}
//	repositories/<namespace>/<name>/_private        present for a private repository
//
// A one-component name lives under library/. Ids are 64 hex characters,
// or 16 for the oldest images. A "sha256:" checksum is the SHA-256 of the
// json, a newline, and the layer bytes.
//
// # Reading
//
// Open returns a Storage; Storage.Repositories, Repository.Tags,
// Storage.Images and Storage.ImageIDs are re-walkable iterators in lexical
// order; Storage.Chain resolves an image's ancestry, base first, and
// Storage.Check reports tags pointing nowhere, missing ancestors,
// unfinished pushes, missing layers and checksum mismatches.
//
// # Converting
//
// Convert makes every tag a v2 image (see its documentation and MapName).
// xz-compressed layers need a decoder, which the standard library lacks:
// by default the xz program is run (ExecXZ); ConvertOptions.XZ takes any
// other, and without one such a layer is reported as an error for its
// image (ErrNoXZ) while the rest is converted.
//
// This package is not a v1 registry: it does not serve, write or repair
// v1 trees, nor verify "tarsum" checksums.
package dockerv1

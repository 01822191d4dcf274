// Package config reads a Distribution registry's configuration file
// (config.yml) the way the registry reads it, for tools that work on the
// tree the registry serves: where the tree is (the filesystem driver's
// rootdirectory, or the s3 driver's bucket and rootdirectory), whether the
// registry keeps a blob-descriptor cache and where (inmemory, or redis in
// the 2.8 "addr" or the v3 "addrs" shape), whether it is in read-only
// maintenance mode, whether it allows deletes, and whether it is a
// pull-through cache. The REGISTRY_* environment overrides are applied as
// the registry applies them, including their pitfalls: a variable naming
// the whole storage section replaces it, keys are matched in upper case
// only, and a map read from YAML three levels down cannot be reached.
//
// It is not a complete model of the registry's configuration: sections
// regstore has no use for (http, auth, notifications, middleware...) are
// read past, not checked. Drivers other than filesystem and s3 (gcs,
// azure, inmemory...) are an error naming the driver. [Open] turns a
// filesystem config into a Store; the s3 module's OpenConfig does the same
// for s3 configs, so that this module needs no S3 client.
package config

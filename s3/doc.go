// Package s3 is a regstore backend on S3-compatible object storage (AWS S3,
// versitygw, MinIO and the like), built on aws-sdk-go-v2.
//
// An [FS] maps the backend path name to the object key
//
//	<RootDirectory without leading and trailing "/">/<name>
//
// (just name when RootDirectory is empty), exactly as distribution's s3
// storage driver maps its paths, so a registry configured with the same
// bucket and rootdirectory serves the tree regstore writes, and regstore
// reads the tree the registry writes:
//
//	fsys, err := s3.New(ctx, s3.Config{Bucket: "registry", Region: "us-east-1", RootDirectory: "/prod"})
//	...
//	store, err := regstore.Open(fsys) // keys prod/docker/registry/v2/...
//
// # Objects, not files
//
// [FS] implements [regstore.WriteFS] with the upgrades [regstore.RenameFS]
// (server-side copy, then delete), [regstore.RemoveAllFS] (a listing, then
// batched DeleteObjects) and [regstore.WalkFS] (one flat, paged listing),
// and on the read side [fs.StatFS], [fs.ReadDirFS] and [fs.ReadFileFS].
//
// Directories do not exist in S3. A "directory" is a key prefix: it exists
// while some object is below it and vanishes with its last object. Create
// makes no parents and Cancel leaves nothing; Remove of a prefix that still
// holds objects fails with [fs.ErrExist], and of one that holds none with
// [fs.ErrNotExist], since an empty directory and a missing one are the same
// thing. Directories report a zero modification time.
//
// Modification times are whole seconds (the precision of the Last-Modified
// header), so a listing and a HEAD of the same object agree.
//
// # Atomic publish
//
// A [regstore.FileWriter] buffers what it is given. On Commit a small
// object is one PutObject; a large one (from [Config].PartSize bytes, 8 MiB
// by default) goes out as a multipart upload, part by part as it is
// written, which Commit completes and Cancel (or a failed Commit) aborts.
// Either way nothing is visible at the key until Commit, and then the whole
// object is.
//
// # Requests
//
// Every request is counted per S3 operation (see [FS.Stats]), with retries
// counted as the separate requests they are. Operations take no context;
// [FS.WithContext] returns a view of the backend whose requests use one.
package s3

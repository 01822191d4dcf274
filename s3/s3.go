package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/regstore/regstore"
)

// DefaultPartSize is the part size of multipart uploads, and the size from
// which a write uses one, when [Config].PartSize is zero.
const DefaultPartSize = 8 << 20

// MinPartSize is the smallest part S3 accepts (except for the last one).
const MinPartSize = 5 << 20

// maxDeleteBatch is the most keys one DeleteObjects request may name.
const maxDeleteBatch = 1000

// Config says where the tree lives.
type Config struct {
	// Bucket holds the tree. Required.
	Bucket string
	// Region is the bucket's region; "us-east-1" when empty.
	Region string
	// Endpoint is the URL of an S3-compatible server, such as
	// "http://127.0.0.1:7070"; empty for AWS.
	Endpoint string
	// AccessKey and SecretKey are static credentials. When both are empty
	// requests are anonymous; to use the AWS credential chain (environment,
	// profiles, instance roles), build a Client with
	// github.com/aws/aws-sdk-go-v2/config and pass it instead.
	AccessKey, SecretKey string
	// RootDirectory is the registry's rootdirectory: keys are
	// RootDirectory, trimmed of "/", then "/" and the path. Empty puts the
	// tree at the top of the bucket.
	RootDirectory string
	// PathStyle addresses the bucket as a path (http://host/bucket/key)
	// rather than a host name, as most S3-compatible servers need; the
	// registry's forcepathstyle.
	PathStyle bool
	// Client, if set, is used as is, and Region, Endpoint, AccessKey,
	// SecretKey and PathStyle are ignored. Request counting works on it
	// too (it is added per request).
	Client *s3.Client
	// PartSize is the part size of multipart uploads and the size from
	// which a write uses one; 0 means [DefaultPartSize]. It must be at
	// least [MinPartSize].
	PartSize int64
}

// FS is a tree of objects under a root in a bucket, as a regstore backend.
// It is safe for concurrent use. See the package documentation for how
// objects stand in for files and directories.
type FS struct {
	client   *s3.Client
	bucket   string
	root     string // RootDirectory trimmed of "/"; "" for the bucket's top
	partSize int64
	stats    *Stats
	ctx      context.Context
}

var (
	_ regstore.WriteFS     = (*FS)(nil)
	_ regstore.RenameFS    = (*FS)(nil)
	_ regstore.RemoveAllFS = (*FS)(nil)
	_ regstore.WalkFS      = (*FS)(nil)
	_ fs.StatFS            = (*FS)(nil)
	_ fs.ReadDirFS         = (*FS)(nil)
	_ fs.ReadFileFS        = (*FS)(nil)
)

// New returns the backend cfg describes. It checks that the bucket is
// reachable with one HeadBucket request; ctx bounds that request only
// (see [FS.WithContext] for the others).
func New(ctx context.Context, cfg Config) (*FS, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: Config.Bucket is required")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("s3: Config.PartSize %d is below the minimum part size %d", partSize, MinPartSize)
	}
	client := cfg.Client
	if client == nil {
		region := cfg.Region
		if region == "" {
			region = "us-east-1"
		}
		opts := s3.Options{
			Region:       region,
			UsePathStyle: cfg.PathStyle,
			// Checksums only where the API requires them: S3-compatible
			// servers do not all accept the newer trailing checksums.
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		}
		if cfg.Endpoint != "" {
			opts.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.AccessKey != "" || cfg.SecretKey != "" {
			opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")
		}
		client = s3.New(opts)
	}
	f := &FS{
		client:   client,
		bucket:   cfg.Bucket,
		root:     strings.Trim(cfg.RootDirectory, "/"),
		partSize: partSize,
		stats:    newStats(),
		ctx:      context.Background(),
	}
	if _, err := f.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &f.bucket}, f.count); err != nil {
		return nil, fmt.Errorf("s3: bucket %q: %w", f.bucket, err)
	}
	return f, nil
}

// WithContext returns a view of the backend whose requests use ctx: when
// ctx is done, they fail with its error. The view shares the client and
// the request counts.
func (f *FS) WithContext(ctx context.Context) *FS {
	g := *f
	g.ctx = ctx
	return &g
}

// Stats counts the requests sent so far, per operation.
func (f *FS) Stats() *Stats { return f.stats }

// Bucket is the bucket the tree is in.
func (f *FS) Bucket() string { return f.bucket }

// Root is the key prefix of the tree, without a trailing "/"; "" when the
// tree is at the top of the bucket.
func (f *FS) Root() string { return f.root }

// Key is the object key of the backend path name, as distribution's s3
// driver computes it.
func (f *FS) Key(name string) string {
	switch {
	case name == ".":
		return f.root
	case f.root == "":
		return name
	}
	return f.root + "/" + name
}

// prefix is the key prefix of everything below the directory name.
func (f *FS) prefix(name string) string {
	if k := f.Key(name); k != "" {
		return k + "/"
	}
	return ""
}

// count is the per-request option that adds the counting middleware.
func (f *FS) count(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, f.stats.middleware)
}

// ObjectInfo is what [fs.FileInfo.Sys] returns for an object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time // as the server reports it
	// ETag is the entity tag without quotes. For an object written by one
	// PutObject without server-side encryption by KMS it is the hex MD5
	// of the content; a multipart upload's has a "-<parts>" suffix.
	ETag string
}

// ContentMD5 returns the MD5 of the object's content when the ETag is one:
// 32 hex digits, as for an object written in one PutObject (a multipart
// upload's ETag has a "-<parts>" suffix). Objects encrypted with SSE-C or
// SSE-KMS have other ETags, which then match no content's MD5, so a caller
// comparing it with the MD5 of the content it expects can only get a false
// "no". regstore uses it to know a link file's content from a listing.
func (o *ObjectInfo) ContentMD5() (sum [md5.Size]byte, ok bool) {
	if len(o.ETag) != 2*md5.Size {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(o.ETag)); err != nil {
		return sum, false
	}
	return sum, true
}

type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
	obj   *ObjectInfo
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) ModTime() time.Time { return i.mtime }
func (i *fileInfo) IsDir() bool        { return i.dir }
func (i *fileInfo) Sys() any {
	if i.obj == nil {
		return nil
	}
	return i.obj
}
func (i *fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

func dirInfo(name string) *fileInfo {
	return &fileInfo{name: path.Base(name), dir: true}
}

func objInfo(name, key string, size *int64, mtime *time.Time, etag *string) *fileInfo {
	o := &ObjectInfo{Key: key, Size: aws.ToInt64(size), LastModified: aws.ToTime(mtime), ETag: strings.Trim(aws.ToString(etag), `"`)}
	return &fileInfo{name: path.Base(name), size: o.Size, mtime: o.LastModified.Truncate(time.Second).UTC(), obj: o}
}

// isNotFound reports whether err is S3's "no such key" (404 for HEAD,
// which has no body to name the error).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && ae == nil
}

// pathErr wraps err for op on name; S3's "no such key" becomes
// fs.ErrNotExist.
func pathErr(op, name string, err error) error {
	if isNotFound(err) {
		err = fs.ErrNotExist
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func validPath(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// checkPath reports whether name is a path a writer may create or change.
func checkPath(op, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open opens the object name for reading, or the "directory" name when no
// object has that key but some are below it. The file reads the object
// with one GetObject; after a Seek, the next Read sends a ranged GetObject;
// ReadAt sends one per call. Reads after the first are conditional on the
// object's ETag, so a file never mixes two versions of an object.
func (f *FS) Open(name string) (fs.File, error) {
	if err := validPath("open", name); err != nil {
		return nil, err
	}
	if name == "." {
		return &dir{f: f, name: name, info: dirInfo(name)}, nil
	}
	key := f.Key(name)
	out, err := f.client.GetObject(f.ctx, &s3.GetObjectInput{Bucket: &f.bucket, Key: &key}, f.count)
	if err == nil {
		info := objInfo(name, key, out.ContentLength, out.LastModified, out.ETag)
		return &file{f: f, name: name, key: key, info: info, body: out.Body}, nil
	}
	if !isNotFound(err) {
		return nil, pathErr("open", name, err)
	}
	ok, err := f.isDir(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if !ok {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	return &dir{f: f, name: name, info: dirInfo(name)}, nil
}

// isDir reports whether some object is below name, with a one-key listing.
func (f *FS) isDir(name string) (bool, error) {
	out, err := f.client.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{
		Bucket: &f.bucket, Prefix: aws.String(f.prefix(name)), MaxKeys: aws.Int32(1),
	}, f.count)
	if err != nil {
		return false, err
	}
	return len(out.Contents) > 0 || len(out.CommonPrefixes) > 0, nil
}

// Stat describes the object name with a HeadObject, or the "directory"
// name with a one-key listing when there is no such object.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := validPath("stat", name); err != nil {
		return nil, err
	}
	if name == "." {
		return dirInfo(name), nil
	}
	fi, err := f.head(name)
	if err == nil {
		return fi, nil
	}
	if !isNotFound(err) {
		return nil, pathErr("stat", name, err)
	}
	ok, err := f.isDir(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	if !ok {
		return nil, pathErr("stat", name, fs.ErrNotExist)
	}
	return dirInfo(name), nil
}

func (f *FS) head(name string) (*fileInfo, error) {
	key := f.Key(name)
	out, err := f.client.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key}, f.count)
	if err != nil {
		return nil, err
	}
	return objInfo(name, key, out.ContentLength, out.LastModified, out.ETag), nil
}

// ReadFile reads the object name with one GetObject.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if err := validPath("read", name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	key := f.Key(name)
	out, err := f.client.GetObject(f.ctx, &s3.GetObjectInput{Bucket: &f.bucket, Key: &key}, f.count)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	var buf bytes.Buffer
	if size > 0 && size < 1<<30 {
		buf.Grow(int(size) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, pathErr("read", name, err)
	}
	b := buf.Bytes()
	if out.ContentLength != nil && int64(len(b)) != size {
		return nil, pathErr("read", name, fmt.Errorf("read %d bytes of %d: %w", len(b), size, io.ErrUnexpectedEOF))
	}
	return b, nil
}

// ReadDir lists the "directory" name with a delimited listing, paged,
// sorted by name (S3 lists in byte order of whole keys, where "a-b/" comes
// before "a/"). A prefix with nothing below it does not exist.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := validPath("readdir", name); err != nil {
		return nil, err
	}
	prefix := f.prefix(name)
	var entries []fs.DirEntry
	p := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{
		Bucket: &f.bucket, Prefix: &prefix, Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx, f.count)
		if err != nil {
			return nil, pathErr("readdir", name, err)
		}
		for _, cp := range page.CommonPrefixes {
			n := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if validElem(n) {
				entries = append(entries, fs.FileInfoToDirEntry(dirInfo(n)))
			}
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			n := strings.TrimPrefix(key, prefix)
			if validElem(n) {
				entries = append(entries, fs.FileInfoToDirEntry(objInfo(n, key, o.Size, o.LastModified, o.ETag)))
			}
		}
	}
	if len(entries) == 0 && name != "." {
		if _, err := f.head(name); err == nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
		} else if !isNotFound(err) {
			return nil, pathErr("readdir", name, err)
		}
		return nil, pathErr("readdir", name, fs.ErrNotExist)
	}
	slices.SortStableFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// validElem reports whether n can be one element of a path: keys with
// empty, "." or ".." elements have no name in the tree and are skipped.
func validElem(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.Contains(n, "/")
}

// WalkFiles calls fn for every object below dir, in byte order of the keys,
// with one flat ListObjectsV2 (no delimiter) paged 1000 keys at a time. The
// FileInfo comes from the listing (its Sys is an [*ObjectInfo]); nothing
// else is requested. Keys that are no valid path are skipped. fn may return
// [fs.SkipAll] to stop.
func (f *FS) WalkFiles(dir string, fn func(name string, info fs.FileInfo) error) error {
	if err := validPath("walk", dir); err != nil {
		return err
	}
	rootPrefix := f.prefix(".")
	p := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{
		Bucket: &f.bucket, Prefix: aws.String(f.prefix(dir)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx, f.count)
		if err != nil {
			return pathErr("walk", dir, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			name := strings.TrimPrefix(key, rootPrefix)
			if !fs.ValidPath(name) {
				continue
			}
			err := fn(name, objInfo(name, key, o.Size, o.LastModified, o.ETag))
			if err == fs.SkipAll {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Create starts a new version of the object name. Nothing is sent until
// the content reaches the part size or Commit is called; no parents are
// made (there are none in S3).
func (f *FS) Create(name string) (regstore.FileWriter, error) {
	if err := checkPath("create", name); err != nil {
		return nil, err
	}
	return &writer{f: f, name: name, key: f.Key(name)}, nil
}

// Remove deletes the object name (a HeadObject, then a DeleteObject). A
// missing object is an error wrapping [fs.ErrNotExist], unless objects are
// below name: then name is a non-empty "directory" and the error wraps
// [fs.ErrExist].
func (f *FS) Remove(name string) error {
	if err := checkPath("remove", name); err != nil {
		return err
	}
	_, err := f.head(name)
	if isNotFound(err) {
		ok, err := f.isDir(name)
		if err != nil {
			return pathErr("remove", name, err)
		}
		if ok {
			return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
		}
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if err != nil {
		return pathErr("remove", name, err)
	}
	key := f.Key(name)
	if _, err := f.client.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}, f.count); err != nil && !isNotFound(err) {
		return pathErr("remove", name, err)
	}
	return nil
}

// RemoveAll deletes the object name and every object below name/ (a flat
// listing, then DeleteObjects in batches of 1000). Only true sub-paths go:
// removing "tags/v1" leaves "tags/v1-rc" alone. Nothing to delete is not an
// error.
func (f *FS) RemoveAll(name string) error {
	if err := checkPath("removeall", name); err != nil {
		return err
	}
	key := f.Key(name)
	keys := []string{key}
	p := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{
		Bucket: &f.bucket, Prefix: aws.String(key + "/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx, f.count)
		if err != nil {
			return pathErr("removeall", name, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) == 1 {
		_, err := f.client.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}, f.count)
		if err != nil && !isNotFound(err) {
			return pathErr("removeall", name, err)
		}
		return nil
	}
	for batch := range slices.Chunk(keys, maxDeleteBatch) {
		objs := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := f.client.DeleteObjects(f.ctx, &s3.DeleteObjectsInput{
			Bucket: &f.bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		}, f.count)
		if err != nil {
			return pathErr("removeall", name, err)
		}
		var errs []error
		for _, e := range out.Errors {
			if c := aws.ToString(e.Code); c != "NoSuchKey" {
				errs = append(errs, fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), c, aws.ToString(e.Message)))
			}
		}
		if len(errs) > 0 {
			return pathErr("removeall", name, errors.Join(errs...))
		}
	}
	return nil
}

// Rename moves the object oldname to newname with a server-side
// CopyObject, then a DeleteObject of oldname. newname is replaced
// atomically; for a moment the object exists at both names (as with the
// registry's s3 driver). Only objects up to 5 GiB can be moved: S3 copies
// larger ones only part by part (UploadPartCopy), which this backend does
// not do, and the copy fails. Directories cannot be renamed.
func (f *FS) Rename(oldname, newname string) error {
	if err := checkPath("rename", oldname); err != nil {
		return err
	}
	if err := checkPath("rename", newname); err != nil {
		return err
	}
	if oldname == newname {
		_, err := f.head(oldname)
		if err != nil {
			return pathErr("rename", oldname, err)
		}
		return nil
	}
	oldKey, newKey := f.Key(oldname), f.Key(newname)
	_, err := f.client.CopyObject(f.ctx, &s3.CopyObjectInput{
		Bucket: &f.bucket, Key: &newKey, CopySource: aws.String(copySource(f.bucket, oldKey)),
	}, f.count)
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	if _, err := f.client.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &oldKey}, f.count); err != nil && !isNotFound(err) {
		return pathErr("rename", oldname, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: bucket and key, URL-escaped
// element by element.
func copySource(bucket, key string) string {
	elems := strings.Split(bucket+"/"+key, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	return strings.Join(elems, "/")
}

var errIsDir = errors.New("is a directory")

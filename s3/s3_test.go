package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest/backendtest"
	regs3 "github.com/regstore/regstore/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keys lists the raw object keys under prefix, through the SDK directly.
func keys(t testing.TB, bkt, prefix string) []string {
	t.Helper()
	var out []string
	p := awss3.NewListObjectsV2Paginator(server.client(), &awss3.ListObjectsV2Input{Bucket: aws.String(bkt), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func put(t testing.TB, w regstore.WriteFS, name string, content []byte) {
	t.Helper()
	fw, err := w.Create(name)
	require.NoError(t, err, "Create(%q)", name)
	_, err = fw.Write(content)
	require.NoError(t, err, "Write(%q)", name)
	require.NoError(t, fw.Commit(), "Commit(%q)", name)
}

// TestKeyMapping checks that keys are the registry s3 driver's: the root
// directory trimmed of "/", then "/" and the path; the bare path with no
// root directory.
func TestKeyMapping(t *testing.T) {
	needServer(t)
	require.NoError(t, server.createBucket("toplevel"))
	for _, c := range []struct{ root, want string }{
		{"", "docker/registry/v2/x"},
		{"/", "docker/registry/v2/x"},
		{"/keymap/", "keymap/docker/registry/v2/x"},
		{"keymap2", "keymap2/docker/registry/v2/x"},
		{"/deep/er/", "deep/er/docker/registry/v2/x"},
	} {
		f, err := regs3.New(context.Background(), regs3.Config{
			Bucket: "toplevel", Endpoint: server.Endpoint, PathStyle: true,
			AccessKey: accessKey, SecretKey: secretKey, RootDirectory: c.root,
		})
		require.NoError(t, err)
		assert.Equal(t, c.want, f.Key("docker/registry/v2/x"), "Key with root %q", c.root)
		put(t, f, "docker/registry/v2/x", []byte(c.root))
		assert.Contains(t, keys(t, "toplevel", ""), c.want, "root %q", c.root)
		b, err := fs.ReadFile(f, "docker/registry/v2/x")
		require.NoError(t, err)
		assert.Equal(t, c.root, string(b))
		entries, err := fs.ReadDir(f, ".")
		require.NoError(t, err)
		require.NotEmpty(t, entries, "ReadDir(.) with root %q", c.root)
		require.NoError(t, f.RemoveAll("docker"))
	}
	assert.Empty(t, keys(t, "toplevel", ""), "everything removed")
}

func TestNewErrors(t *testing.T) {
	needServer(t)
	_, err := regs3.New(context.Background(), regs3.Config{})
	assert.Error(t, err, "New without a bucket")
	_, err = regs3.New(context.Background(), regs3.Config{Bucket: "no-such-bucket", Endpoint: server.Endpoint,
		PathStyle: true, AccessKey: accessKey, SecretKey: secretKey})
	assert.Error(t, err, "New with a missing bucket")
	_, err = regs3.New(context.Background(), regs3.Config{Bucket: bucket, Endpoint: server.Endpoint,
		PathStyle: true, AccessKey: accessKey, SecretKey: "wrong"})
	assert.Error(t, err, "New with a wrong secret")
	_, err = regs3.New(context.Background(), regs3.Config{Bucket: bucket, PartSize: 1 << 20})
	assert.Error(t, err, "New with a part size below 5 MiB")
}

// TestRemoveAllExactSubpaths is the registry v2.8.3 S3 Delete bug: keys that
// merely share the prefix ("v1-rc", "v1.0", "v10") sort between "v1" and
// "v1/..." and must survive.
func TestRemoveAllExactSubpaths(t *testing.T) {
	f := newFS(t, uniqueRoot("removeall"))
	for _, p := range []string{"tags/v1/current/link", "tags/v1/index/sha256/ab/link", "tags/v1-rc/current/link",
		"tags/v1.0/current/link", "tags/v10/current/link", "tags/v0/current/link"} {
		// (versitygw, like MinIO, refuses a key that is also a prefix, so no
		// object "tags/v1" itself.)
		put(t, f, p, []byte(p))
	}
	f.Stats().Reset()
	require.NoError(t, f.RemoveAll("tags/v1"))
	assert.Equal(t, map[string]int64{"ListObjectsV2": 1, "DeleteObjects": 1}, f.Stats().Snapshot())
	var left []string
	require.NoError(t, f.WalkFiles(".", func(name string, _ fs.FileInfo) error {
		left = append(left, name)
		return nil
	}))
	assert.Equal(t, []string{"tags/v0/current/link", "tags/v1-rc/current/link", "tags/v1.0/current/link", "tags/v10/current/link"}, left)
	require.NoError(t, f.RemoveAll("tags/v0/current/link"), "RemoveAll(file)")
	_, err := fs.Stat(f, "tags/v0")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestListingOrderAndPaging puts more than one page (1000 keys) in one
// directory, with names whose S3 byte order differs from fs order.
func TestListingOrderAndPaging(t *testing.T) {
	f := newFS(t, uniqueRoot("paging"))
	var names []string
	for i := range 1010 {
		names = append(names, fmt.Sprintf("d/n%04d/link", i))
	}
	names = append(names, "d/a/link", "d/a-b/link", "d/a.b/link", "d/a0/link", "d/file", "d/a/x/y")
	var wg sync.WaitGroup
	ch := make(chan string)
	for range 16 {
		wg.Go(func() {
			for n := range ch {
				put(t, f, n, []byte(n))
			}
		})
	}
	for _, n := range names {
		ch <- n
	}
	close(ch)
	wg.Wait()

	f.Stats().Reset()
	entries, err := fs.ReadDir(f, "d")
	require.NoError(t, err)
	assert.Equal(t, int64(2), f.Stats().Snapshot()["ListObjectsV2"], "ReadDir pages")
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	require.Len(t, got, 1010+5)
	assert.Equal(t, []string{"a", "a-b", "a.b", "a0", "file"}, got[:5], "ReadDir is sorted by name, not key")
	assert.True(t, slices.IsSorted(got))

	f.Stats().Reset()
	var walked []string
	require.NoError(t, f.WalkFiles("d", func(name string, fi fs.FileInfo) error {
		walked = append(walked, name)
		assert.Equal(t, int64(len(name)), fi.Size(), "size of %s", name)
		return nil
	}))
	assert.Equal(t, int64(2), f.Stats().Snapshot()["ListObjectsV2"], "WalkFiles pages")
	assert.Equal(t, len(names), len(walked))
	assert.True(t, slices.IsSorted(walked), "WalkFiles is in key byte order")
	assert.Equal(t, []string{"d/a-b/link", "d/a.b/link", "d/a/link", "d/a/x/y"}, walked[:4], "byte order: - and . before /")

	n := 0
	require.NoError(t, f.WalkFiles("d", func(string, fs.FileInfo) error {
		n++
		if n == 3 {
			return fs.SkipAll
		}
		return nil
	}))
	assert.Equal(t, 3, n, "SkipAll stops the walk")
	require.NoError(t, f.WalkFiles("missing", func(string, fs.FileInfo) error {
		t.Error("file in a missing directory")
		return nil
	}))
	require.NoError(t, f.RemoveAll("d"))
	_, err = fs.ReadDir(f, "d")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestMultipart writes past the part size: the parts go out as they fill,
// nothing is visible before Commit, and Cancel aborts the upload.
func TestMultipart(t *testing.T) {
	f := newFS(t, uniqueRoot("multipart")) // PartSize 5 MiB
	content := randomBytes(1, 12<<20+123)

	fw, err := f.Create("big/data")
	require.NoError(t, err)
	f.Stats().Reset()
	_, err = io.Copy(fw, io.LimitReader(bytes.NewReader(content), 11<<20))
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"CreateMultipartUpload": 1, "UploadPart": 2}, f.Stats().Snapshot(), "parts sent as written")
	_, err = fs.Stat(f, "big/data")
	assert.ErrorIs(t, err, fs.ErrNotExist, "invisible before Commit")
	_, err = fw.Write(content[11<<20:])
	require.NoError(t, err)
	require.NoError(t, fw.Commit())
	assert.Equal(t, int64(1), f.Stats().Snapshot()["CompleteMultipartUpload"])
	assert.Equal(t, int64(3), f.Stats().Snapshot()["UploadPart"])
	got, err := fs.ReadFile(f, "big/data")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content, got), "content after multipart Commit")
	fi, err := fs.Stat(f, "big/data")
	require.NoError(t, err)
	assert.Equal(t, int64(len(content)), fi.Size())

	// Exactly two parts: Commit has nothing left to send.
	put(t, f, "big/exact", content[:10<<20])
	got, err = fs.ReadFile(f, "big/exact")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content[:10<<20], got))

	// Cancel aborts: the old content stays, no upload is left.
	fw, err = f.Create("big/data")
	require.NoError(t, err)
	_, err = fw.Write(content[:6<<20])
	require.NoError(t, err)
	f.Stats().Reset()
	require.NoError(t, fw.Cancel())
	assert.Equal(t, map[string]int64{"AbortMultipartUpload": 1}, f.Stats().Snapshot())
	got, err = fs.ReadFile(f, "big/data")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content, got), "content after a cancelled replace")
	ups, err := server.client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(f.Root() + "/")})
	require.NoError(t, err)
	assert.Empty(t, ups.Uploads, "no multipart upload left after Cancel")
	assert.ErrorIs(t, fw.Commit(), fs.ErrClosed, "Commit after Cancel")
	_, err = fw.Write([]byte("x"))
	assert.ErrorIs(t, err, fs.ErrClosed, "Write after Cancel")
}

// TestRangedReads checks Seek, Read and ReadAt on an object: a ranged GET
// after a Seek, one per ReadAt, and the io/iotest reader contract.
func TestRangedReads(t *testing.T) {
	f := newFS(t, uniqueRoot("ranges"))
	content := randomBytes(2, 300<<10)
	put(t, f, "obj", content)

	f.Stats().Reset()
	fl, err := f.Open("obj")
	require.NoError(t, err)
	defer fl.Close()
	rs := fl.(io.ReadSeeker)
	buf := make([]byte, 100)
	_, err = io.ReadFull(rs, buf)
	require.NoError(t, err)
	assert.Equal(t, content[:100], buf)
	_, err = rs.Seek(200<<10, io.SeekStart)
	require.NoError(t, err)
	_, err = io.ReadFull(rs, buf)
	require.NoError(t, err)
	assert.Equal(t, content[200<<10:200<<10+100], buf, "Read after Seek")
	ra := fl.(io.ReaderAt)
	n, err := ra.ReadAt(buf, int64(len(content))-40)
	assert.Equal(t, 40, n)
	assert.ErrorIs(t, err, io.EOF, "ReadAt past the end")
	assert.Equal(t, content[len(content)-40:], buf[:40])
	assert.Equal(t, map[string]int64{"GetObject": 3}, f.Stats().Snapshot(), "open, ranged read after Seek, ReadAt")

	// iotest.TestReader does one ReadAt per byte: keep it small.
	put(t, f, "small", content[:500])
	fl2, err := f.Open("small")
	require.NoError(t, err)
	require.NoError(t, iotest.TestReader(fl2, content[:500]))
	require.NoError(t, fl2.Close())
	assert.ErrorIs(t, fl2.Close(), fs.ErrClosed)

	// A file never mixes two versions: once the object is replaced, a
	// ranged read of the open file fails instead.
	fl3, err := f.Open("obj")
	require.NoError(t, err)
	defer fl3.Close()
	put(t, f, "obj", []byte("replaced, and of another length than before, far shorter"))
	_, err = fl3.(io.ReaderAt).ReadAt(buf, 1000)
	assert.Error(t, err, "ReadAt of a replaced object")
}

func TestContext(t *testing.T) {
	f := newFS(t, uniqueRoot("ctx"))
	put(t, f, "x", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fs.ReadFile(f.WithContext(ctx), "x")
	assert.ErrorIs(t, err, context.Canceled)
	_, err = fs.ReadFile(f, "x")
	assert.NoError(t, err, "the original is not bound to the context")
}

func TestErrors(t *testing.T) {
	f := newFS(t, uniqueRoot("errors"))
	put(t, f, "dir/file", []byte("x"))
	var pe *fs.PathError
	_, err := fs.ReadDir(f, "dir/file")
	require.ErrorAs(t, err, &pe)
	assert.NotErrorIs(t, err, fs.ErrNotExist, "ReadDir(file) is not-a-directory")
	_, err = fs.ReadFile(f, "dir")
	assert.Error(t, err, "ReadFile(dir)")
	fl, err := f.Open("dir")
	require.NoError(t, err)
	_, err = io.ReadAll(fl)
	assert.Error(t, err, "Read(dir)")
	assert.ErrorIs(t, f.Rename("missing", "x"), fs.ErrNotExist)
	err = f.Remove("dir")
	assert.ErrorIs(t, err, fs.ErrExist, "Remove(non-empty dir)")
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "dir", pe.Path)
	for _, p := range backendtest.BadPaths {
		if p == "." {
			continue
		}
		_, err := f.Stat(p)
		assert.ErrorIs(t, err, fs.ErrInvalid, "Stat(%q)", p)
		assert.ErrorIs(t, f.RemoveAll(p), fs.ErrInvalid, "RemoveAll(%q)", p)
		assert.ErrorIs(t, f.WalkFiles(p, nil), fs.ErrInvalid, "WalkFiles(%q)", p)
	}
	// Stat of a file and its listing agree (fstest checks it too).
	fi, err := f.Stat("dir/file")
	require.NoError(t, err)
	entries, err := f.ReadDir("dir")
	require.NoError(t, err)
	li, err := entries[0].Info()
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(li.ModTime()), "ModTime from HEAD %v, from listing %v", fi.ModTime(), li.ModTime())
	oi, ok := fi.Sys().(*regs3.ObjectInfo)
	require.True(t, ok, "Sys() is *ObjectInfo")
	assert.Equal(t, "9dd4e461268c8034f5c8564e155c67a6", oi.ETag, "ETag is the MD5 of a single-PUT object")
}

// TestStoreRoundTrip pushes images through regstore onto S3 and reads them
// back, including a blob big enough for a multipart upload, one pushed with
// its digest unknown (staged, then renamed by server-side copy), and
// repository deletion.
func TestStoreRoundTrip(t *testing.T) {
	f := newFS(t, uniqueRoot("store"))
	s, err := regstore.Open(f)
	require.NoError(t, err)
	r, err := s.Repository("team/app")
	require.NoError(t, err)
	big := randomBytes(3, 7<<20)
	b, err := r.PutBlob(bytes.NewReader(big), "", -1)
	require.NoError(t, err, "PutBlob, digest unknown")
	assert.Equal(t, int64(len(big)), b.Size())
	staged := keys(t, bucket, f.Root()+"/docker/registry/v2/blobs/staging")
	assert.Empty(t, staged, "no staging object left")
	require.NoError(t, b.Verify())
	rc, err := b.Open()
	require.NoError(t, err)
	_, err = rc.Seek(5<<20, io.SeekStart)
	require.NoError(t, err)
	tail, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.True(t, bytes.Equal(big[5<<20:], tail), "blob read after Seek")

	// A wrong digest is refused and leaves nothing behind.
	before := keys(t, bucket, f.Root()+"/")
	_, err = r.PutBlob(bytes.NewReader(big), b.Digest()[:len(b.Digest())-4]+"0000", -1)
	assert.ErrorIs(t, err, regstore.ErrDigestMismatch)
	assert.Equal(t, before, keys(t, bucket, f.Root()+"/"), "tree after a digest mismatch")
	ups, err := server.client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(f.Root() + "/")})
	require.NoError(t, err)
	assert.Empty(t, ups.Uploads, "the multipart upload was aborted")

	m := pushImage(t, r, 1, "v1", "latest")
	m2 := pushImage(t, r, 2, "v1-rc")
	idx := pushIndex(t, r, m, m2, "multi")
	for tag, want := range map[string]string{"v1": m.Digest().String(), "latest": m.Digest().String(), "v1-rc": m2.Digest().String(), "multi": idx.Digest().String()} {
		tg, err := r.Tag(tag)
		require.NoError(t, err)
		got, err := tg.Resolve()
		require.NoError(t, err, "Resolve(%s)", tag)
		assert.Equal(t, want, got.Digest().String(), "tag %s", tag)
	}
	var tags []string
	for tg, err := range r.Tags() {
		require.NoError(t, err)
		tags = append(tags, tg.Name())
	}
	assert.Equal(t, []string{"latest", "multi", "v1", "v1-rc"}, tags, "Tags() sorted")

	tg, _ := r.Tag("v1")
	require.NoError(t, tg.Delete())
	tg, _ = r.Tag("v1-rc")
	_, err = tg.Resolve()
	require.NoError(t, err, "v1-rc survives deleting v1")

	var problems []check.Problem
	for p, err := range check.Problems(context.Background(), s, check.Options{}) {
		require.NoError(t, err)
		problems = append(problems, p)
	}
	// The big blob is linked but referenced by no manifest: an orphan only
	// if unlinked, so expect nothing.
	assert.Empty(t, problems, "Check")

	require.NoError(t, s.DeleteRepository("team/app"))
	assert.Empty(t, keys(t, bucket, f.Root()+"/docker/registry/v2/repositories/"), "repository removed")
	var repos []string
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		repos = append(repos, r.Name())
	}
	assert.Empty(t, repos)
}

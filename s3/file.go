package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// file is an object open for reading. Read and Seek share an offset and are
// not safe for concurrent use; ReadAt is.
type file struct {
	f         *FS
	name, key string
	info      *fileInfo

	mu      sync.Mutex
	body    io.ReadCloser // the response being read, nil after Seek or EOF
	bodyOff int64         // offset of the next byte body yields
	off     int64
	closed  bool
}

var (
	_ io.ReadSeekCloser = (*file)(nil)
	_ io.ReaderAt       = (*file)(nil)
)

func (fl *file) Stat() (fs.FileInfo, error) { return fl.info, nil }

// get sends a GetObject for the bytes [off, end) (end < 0: to the end),
// conditional on the ETag the file was opened with.
func (fl *file) get(off, end int64) (io.ReadCloser, error) {
	rng := fmt.Sprintf("bytes=%d-", off)
	if end >= 0 {
		rng += fmt.Sprint(end - 1)
	}
	in := &s3.GetObjectInput{Bucket: &fl.f.bucket, Key: &fl.key, Range: &rng}
	if e := fl.info.obj.ETag; e != "" {
		in.IfMatch = aws.String(`"` + e + `"`)
	}
	out, err := fl.f.client.GetObject(fl.f.ctx, in, fl.f.count)
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

func (fl *file) Read(p []byte) (int, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrClosed}
	}
	if fl.off >= fl.info.size {
		fl.dropBody()
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if fl.body == nil || fl.bodyOff != fl.off {
		fl.dropBody()
		body, err := fl.get(fl.off, -1)
		if err != nil {
			return 0, pathErr("read", fl.name, err)
		}
		fl.body, fl.bodyOff = body, fl.off
	}
	p = p[:min(int64(len(p)), fl.info.size-fl.off)]
	n, err := fl.body.Read(p)
	fl.off += int64(n)
	fl.bodyOff += int64(n)
	switch {
	case err == io.EOF && fl.off < fl.info.size:
		fl.dropBody()
		return n, pathErr("read", fl.name, io.ErrUnexpectedEOF)
	case err == io.EOF:
		fl.dropBody()
		return n, io.EOF
	case err != nil:
		fl.dropBody()
		return n, pathErr("read", fl.name, err)
	}
	return n, nil
}

func (fl *file) dropBody() {
	if fl.body != nil {
		fl.body.Close()
		fl.body = nil
	}
}

// Seek moves the offset; the next Read starts a ranged GetObject there.
func (fl *file) Seek(offset int64, whence int) (int64, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrClosed}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += fl.info.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrInvalid}
	}
	fl.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off with one ranged GetObject.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	fl.mu.Lock()
	closed := fl.closed
	fl.mu.Unlock()
	if closed {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if off >= fl.info.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := min(off+int64(len(p)), fl.info.size)
	body, err := fl.get(off, end)
	if err != nil {
		return 0, pathErr("read", fl.name, err)
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:end-off])
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, pathErr("read", fl.name, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return &fs.PathError{Op: "close", Path: fl.name, Err: fs.ErrClosed}
	}
	fl.closed = true
	fl.dropBody()
	return nil
}

// dir is a "directory" open for reading; it lists on the first ReadDir.
type dir struct {
	f       *FS
	name    string
	info    *fileInfo
	entries []fs.DirEntry
	loaded  bool
	off     int
	closed  bool
}

var _ fs.ReadDirFile = (*dir)(nil)

func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errIsDir}
}

func (d *dir) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.name, Err: fs.ErrClosed}
	}
	if !d.loaded {
		entries, err := d.f.ReadDir(d.name)
		if err != nil && !(errors.Is(err, fs.ErrNotExist) && d.name == ".") {
			return nil, err
		}
		d.entries, d.loaded = entries, true
	}
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

// writer buffers an object's content and publishes it on Commit: one
// PutObject, or, once the content reaches the part size, a multipart upload
// whose parts go out as they fill and which Commit completes.
type writer struct {
	f         *FS
	name, key string
	buf       bytes.Buffer
	uploadID  *string
	parts     []types.CompletedPart
	err       error // a failed part upload; the writer can only be cancelled
	done      bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, &fs.PathError{Op: "write", Path: w.name, Err: fs.ErrClosed}
	}
	if w.err != nil {
		return 0, w.err
	}
	w.buf.Write(p)
	for int64(w.buf.Len()) >= w.f.partSize {
		if err := w.uploadPart(w.buf.Next(int(w.f.partSize))); err != nil {
			w.err = pathErr("write", w.name, err)
			return len(p), w.err
		}
	}
	return len(p), nil
}

// uploadPart sends b as the next part, starting the upload first if need be.
func (w *writer) uploadPart(b []byte) error {
	f := w.f
	if w.uploadID == nil {
		out, err := f.client.CreateMultipartUpload(f.ctx, &s3.CreateMultipartUploadInput{
			Bucket: &f.bucket, Key: &w.key, ContentType: aws.String(contentType),
		}, f.count)
		if err != nil {
			return err
		}
		w.uploadID = out.UploadId
	}
	num := int32(len(w.parts) + 1)
	// A bytes.Reader: over plain http the SDK needs a seekable body.
	out, err := f.client.UploadPart(f.ctx, &s3.UploadPartInput{
		Bucket: &f.bucket, Key: &w.key, UploadId: w.uploadID, PartNumber: &num,
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	}, f.count)
	if err != nil {
		return err
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: &num})
	return nil
}

// contentType is what the registry's s3 driver stores objects as.
const contentType = "application/octet-stream"

func (w *writer) Commit() error {
	if w.done {
		return &fs.PathError{Op: "commit", Path: w.name, Err: fs.ErrClosed}
	}
	w.done = true
	f := w.f
	if w.err != nil {
		return errors.Join(w.err, w.abort())
	}
	if w.uploadID == nil {
		b := w.buf.Bytes()
		_, err := f.client.PutObject(f.ctx, &s3.PutObjectInput{
			Bucket: &f.bucket, Key: &w.key, Body: bytes.NewReader(b),
			ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(contentType),
		}, f.count)
		w.buf = bytes.Buffer{}
		if err != nil {
			return pathErr("commit", w.name, err)
		}
		return nil
	}
	if w.buf.Len() > 0 {
		if err := w.uploadPart(w.buf.Bytes()); err != nil {
			return errors.Join(pathErr("commit", w.name, err), w.abort())
		}
	}
	w.buf = bytes.Buffer{}
	_, err := f.client.CompleteMultipartUpload(f.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &f.bucket, Key: &w.key, UploadId: w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	}, f.count)
	if err != nil {
		return errors.Join(pathErr("commit", w.name, err), w.abort())
	}
	return nil
}

func (w *writer) Cancel() error {
	if w.done {
		return &fs.PathError{Op: "cancel", Path: w.name, Err: fs.ErrClosed}
	}
	w.done = true
	w.buf = bytes.Buffer{}
	return w.abort()
}

// abort ends the multipart upload, if one was started, discarding its parts.
func (w *writer) abort() error {
	if w.uploadID == nil {
		return nil
	}
	f := w.f
	_, err := f.client.AbortMultipartUpload(f.ctx, &s3.AbortMultipartUploadInput{
		Bucket: &f.bucket, Key: &w.key, UploadId: w.uploadID,
	}, f.count)
	w.uploadID = nil
	if err != nil {
		return pathErr("abort", w.name, err)
	}
	return nil
}

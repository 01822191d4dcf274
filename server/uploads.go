package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// Upload sessions live where the registry keeps its own, in
// <repository>/_uploads/<id>/, so that upload purging, garbage
// collection's grace window and every tool that lists uploads see them:
//
//	startedat               the session's start, RFC 3339, written by POST
//	data                    the first chunk's bytes
//	parts/<offset>          each later chunk, named by its offset in the
//	                        blob (20 decimal digits, so names sort by offset)
//
// A backend only publishes whole files, so a chunk is never appended to a
// file: each PATCH writes one new file, streaming, and the bytes received
// are those files' sizes. The PUT that completes the session streams them,
// then its own body, into the store's content-addressed blob write (which
// hashes and verifies them), and removes the session. Memory stays bounded
// on every backend; a session of one chunk (what docker, containerd and
// crane send) has exactly the registry's files.

// uploadIDPattern is the registry's route grammar of upload ids.
var uploadIDPattern = regexp.MustCompile(`^[a-zA-Z0-9._=-]+$`)

const partsDir = "parts"

// newUploadID returns a random (version 4) UUID, the form of the
// registry's upload ids: its purging only considers those.
func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// A session is one upload in progress, as found on the backend.
type session struct {
	repo     *regstore.Repository
	id       string
	segments []segment // in offset order
	size     int64     // bytes received
}

// A segment is one file of a session's data.
type segment struct {
	path      string
	off, size int64
}

// errSessionCorrupt: a session's files do not add up to one stream.
var errSessionCorrupt = errors.New("upload session's chunks are not contiguous")

// openSession reads the state of session id. A session that does not
// exist is an error wrapping fs.ErrNotExist.
func (h *Handler) openSession(repo *regstore.Repository, id string) (*session, error) {
	if !uploadIDPattern.MatchString(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("upload id %q: %w", id, fs.ErrNotExist)
	}
	fsys, l := h.store.FS(), h.store.Layout()
	if _, err := fs.Stat(fsys, l.UploadStartedAt(repo.Name(), id)); err != nil {
		return nil, err
	}
	s := &session{repo: repo, id: id}
	data := l.UploadData(repo.Name(), id)
	if fi, err := fs.Stat(fsys, data); err == nil {
		s.segments = append(s.segments, segment{path: data, size: fi.Size()})
		s.size = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir := path.Join(l.Upload(repo.Name(), id), partsDir)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		off, perr := strconv.ParseInt(e.Name(), 10, 64)
		if perr != nil || e.IsDir() {
			continue // a temporary file of a chunk being written
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		if off != s.size {
			return nil, fmt.Errorf("%w: chunk at %d after %d bytes", errSessionCorrupt, off, s.size)
		}
		s.segments = append(s.segments, segment{path: path.Join(dir, e.Name()), off: off, size: fi.Size()})
		s.size += fi.Size()
	}
	return s, nil
}

// segmentPath is where the chunk starting at off goes.
func (h *Handler) segmentPath(s *session, off int64) string {
	l := h.store.Layout()
	if off == 0 {
		return l.UploadData(s.repo.Name(), s.id)
	}
	return path.Join(l.Upload(s.repo.Name(), s.id), partsDir, fmt.Sprintf("%020d", off))
}

// reader streams the session's data, opening one file at a time.
func (h *Handler) sessionReader(s *session) io.Reader {
	rs := make([]io.Reader, len(s.segments))
	for i, seg := range s.segments {
		rs[i] = &lazyFile{fsys: h.store.FS(), name: seg.path}
	}
	return io.MultiReader(rs...)
}

// lazyFile opens its file at the first Read and closes it at EOF.
type lazyFile struct {
	fsys fs.FS
	name string
	f    fs.File
	done bool
}

func (l *lazyFile) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.f == nil {
		f, err := l.fsys.Open(l.name)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	n, err := l.f.Read(p)
	if err != nil {
		l.done = true
		cerr := l.f.Close()
		if err == io.EOF && cerr != nil {
			err = cerr
		}
	}
	return n, err
}

// removeSession deletes a session's directory.
func (h *Handler) removeSession(s *session) error {
	return removeAll(h.w, h.store.Layout().Upload(s.repo.Name(), s.id))
}

// removeAll removes dir and everything below it.
func removeAll(w regstore.WriteFS, dir string) error {
	if ra, ok := w.(regstore.RemoveAllFS); ok {
		return ra.RemoveAll(dir)
	}
	entries, err := fs.ReadDir(w, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if e.IsDir() {
			err = removeAll(w, p)
		} else {
			err = w.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := w.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeFile publishes the content of r at name and returns its length.
// Nothing is published when r is empty.
func writeFile(w regstore.WriteFS, name string, r io.Reader) (int64, error) {
	f, err := w.Create(name)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil || n == 0 {
		return n, errors.Join(err, f.Cancel())
	}
	return n, f.Commit()
}

// uploadHeaders sets what the registry sends about a session in progress.
func uploadHeaders(w http.ResponseWriter, s *session) {
	end := s.size
	if end > 0 {
		end--
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+s.repo.Name()+"/blobs/uploads/"+s.id)
	hd.Set("Range", fmt.Sprintf("0-%d", end))
	hd.Set("Docker-Upload-UUID", s.id)
	hd.Set("Content-Length", "0")
}

// blobCreated answers a completed upload or mount: 201 with the blob's
// location and digest.
func blobCreated(w http.ResponseWriter, repo *regstore.Repository, d digest.Digest) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo.Name()+"/blobs/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// putBlobError answers a failed blob write.
func putBlobError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, regstore.ErrDigestMismatch), errors.Is(err, regstore.ErrInvalidDigest):
		writeError(w, errDigestInvalid, err)
	case errors.Is(err, regstore.ErrSizeMismatch):
		writeError(w, errBlobUploadInvalid, err)
	default:
		storeError(w, err, errBlobUploadUnknown)
	}
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=&from=, or ?mount= alone from any repository, as OCI 1.1
// allows), a monolithic upload (?digest= with the blob as body), or a new
// session.
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, repo *regstore.Repository) {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		if d, err := parseDigest(m); err == nil {
			var b *regstore.Blob
			if from := q.Get("from"); from != "" {
				if src, err := h.store.Repository(from); err == nil {
					b, _ = repo.Mount(src, d)
				}
			} else if _, err := h.store.Blob(d); err == nil {
				b, _ = repo.LinkBlob(d)
			}
			if b != nil {
				blobCreated(w, repo, d)
				return
			}
		}
		// Not mountable: a new session, as the registry answers.
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			writeError(w, errDigestInvalid, err)
			return
		}
		if _, err := repo.PutBlob(r.Body, d, r.ContentLength); err != nil {
			putBlobError(w, err)
			return
		}
		blobCreated(w, repo, d)
		return
	}
	s := &session{repo: repo, id: newUploadID()}
	started := time.Now().UTC().Format(time.RFC3339)
	if _, err := writeFile(h.w, h.store.Layout().UploadStartedAt(repo.Name(), s.id), strings.NewReader(started)); err != nil {
		storeError(w, err, errBlobUploadUnknown)
		return
	}
	uploadHeaders(w, s)
	w.WriteHeader(http.StatusAccepted)
}

// session finds the session of a request, or answers that it is unknown.
func (h *Handler) session(w http.ResponseWriter, repo *regstore.Repository, id string) *session {
	s, err := h.openSession(repo, id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, errBlobUploadUnknown, nil)
	case errors.Is(err, errSessionCorrupt):
		writeError(w, errBlobUploadInvalid, err)
	case err != nil:
		writeError(w, errUnknown, err)
	default:
		return s
	}
	return nil
}

// checkContentRange applies the registry's checks of a chunk's
// Content-Range ("<start>-<end>", inclusive): it must start where the
// session's data ends, and agree with Content-Length.
func checkContentRange(w http.ResponseWriter, r *http.Request, s *session) bool {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return true
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	a, b, ok := strings.Cut(cr, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		writeError(w, errRangeInvalid, "malformed Content-Range "+strconv.Quote(cr))
		return false
	}
	if start > end || start != s.size {
		writeError(w, errRangeInvalid, fmt.Sprintf("chunk %d-%d does not start at the upload's offset %d", start, end, s.size))
		return false
	}
	if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
		writeError(w, errSizeInvalid, fmt.Sprintf("Content-Length %d for a chunk of %d bytes", r.ContentLength, end-start+1))
		return false
	}
	return true
}

// patchUpload answers PATCH /v2/<name>/blobs/uploads/<id>: one chunk,
// streamed (with or without Content-Range).
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, id string) {
	s := h.session(w, repo, id)
	if s == nil || !checkContentRange(w, r, s) {
		return
	}
	n, err := writeFile(h.w, h.segmentPath(s, s.size), r.Body)
	if err != nil {
		storeError(w, err, errBlobUploadUnknown)
		return
	}
	s.size += n
	uploadHeaders(w, s)
	w.WriteHeader(http.StatusAccepted)
}

// putUpload answers PUT /v2/<name>/blobs/uploads/<id>?digest=: the last
// chunk (possibly empty), then the blob is verified and published.
func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, id string) {
	s := h.session(w, repo, id)
	if s == nil || !checkContentRange(w, r, s) {
		return
	}
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		writeError(w, errDigestInvalid, "digest missing")
		return
	}
	d, err := parseDigest(ds)
	if err != nil {
		writeError(w, errDigestInvalid, "digest parsing failed")
		return
	}
	_, err = repo.PutBlob(io.MultiReader(h.sessionReader(s), r.Body), d, -1)
	// The session ends either way, as the registry cancels an upload
	// whose commit failed.
	if rerr := h.removeSession(s); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		putBlobError(w, err)
		return
	}
	blobCreated(w, repo, d)
}

// uploadStatus answers GET /v2/<name>/blobs/uploads/<id>.
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, id string) {
	s := h.session(w, repo, id)
	if s == nil {
		return
	}
	uploadHeaders(w, s)
	w.WriteHeader(http.StatusNoContent)
}

// cancelUpload answers DELETE /v2/<name>/blobs/uploads/<id>.
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, id string) {
	s := h.session(w, repo, id)
	if s == nil {
		return
	}
	if err := h.removeSession(s); err != nil {
		writeError(w, errUnknown, err)
		return
	}
	w.Header().Set("Docker-Upload-UUID", id)
	w.WriteHeader(http.StatusNoContent)
}

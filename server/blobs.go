package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/regstore/regstore"
)

// blobCacheControl is what the registry sends with every blob: content
// addressed, so cacheable for a year.
const blobCacheControl = "max-age=31536000"

// getBlob answers GET and HEAD /v2/<name>/blobs/<digest>, with ranges
// (open-ended ones too) and conditional requests on the ETag, the quoted
// digest.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	d, err := parseDigest(ref)
	if err != nil {
		writeError(w, errDigestInvalid, err)
		return
	}
	b, err := repo.Blob(d)
	if err != nil {
		storeError(w, err, errBlobUnknown)
		return
	}
	f, err := b.Open()
	if err != nil {
		storeError(w, err, errBlobUnknown)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Etag", `"`+d.String()+`"`)
	hd.Set("Cache-Control", blobCacheControl)
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	var content io.ReadSeeker = f
	if _, err := f.Seek(0, io.SeekCurrent); err != nil {
		content = &forwardSeeker{r: f, size: b.Size()}
	}
	// ServeContent answers Range, If-None-Match, If-Match and HEAD.
	http.ServeContent(w, r, "", time.Time{}, content)
}

// forwardSeeker lets http.ServeContent use a file that cannot seek, of a
// known size: it seeks forward by reading.
type forwardSeeker struct {
	r         io.Reader
	size      int64
	pos, want int64
}

func (s *forwardSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.want
	case io.SeekEnd:
		off += s.size
	}
	if off < 0 {
		return 0, errors.New("negative position")
	}
	s.want = off
	return off, nil
}

func (s *forwardSeeker) Read(p []byte) (int, error) {
	if s.want < s.pos {
		return 0, fmt.Errorf("seek backwards: %w", errors.ErrUnsupported)
	}
	if s.want > s.pos {
		n, err := io.CopyN(io.Discard, s.r, s.want-s.pos)
		s.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	s.want = s.pos
	return n, err
}

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>: the blob's link
// goes, its data stays until garbage collection.
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	if !h.opts.DeleteBlobs {
		writeError(w, errUnsupported, nil)
		return
	}
	d, err := parseDigest(ref)
	if err != nil {
		writeError(w, errDigestInvalid, err)
		return
	}
	if err := repo.UnlinkBlob(d); err != nil {
		storeError(w, err, errBlobUnknown)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

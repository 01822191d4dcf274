package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// isDigestRef reports whether a manifest reference is meant as a digest:
// tags cannot hold ':'.
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// acceptedTypes are the manifest media types a request's Accept headers
// name, parsed as the registry parses them (no q values).
func acceptedTypes(r *http.Request) map[string]bool {
	ok := map[string]bool{}
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(part); err == nil {
				ok[mt] = true
			}
		}
	}
	return ok
}

// etagMatches reports whether one of the values of header (If-None-Match
// or If-Match) names d, quoted or not, or is "*".
func etagMatches(r *http.Request, header string, d digest.Digest) bool {
	for _, v := range r.Header.Values(header) {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
			if part == "*" || part == d.String() || part == `"`+d.String()+`"` {
				return true
			}
		}
	}
	return false
}

// getManifest answers GET and HEAD /v2/<name>/manifests/<reference>.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	var (
		d   digest.Digest // the digest the client asked for, or the tag names
		m   *regstore.Manifest
		err error
	)
	if isDigestRef(ref) {
		if d, err = parseDigest(ref); err != nil {
			writeError(w, errDigestInvalid, err)
			return
		}
	} else {
		if err := regstore.ValidateTag(ref); err != nil {
			writeError(w, errManifestUnknown, err)
			return
		}
		t, _ := repo.Tag(ref)
		if d, err = t.Digest(); err != nil {
			storeError(w, err, errManifestUnknown)
			return
		}
	}
	// The registry answers a matching If-None-Match before it reads the
	// manifest.
	if etagMatches(r, "If-None-Match", d) {
		w.Header().Set("Etag", `"`+d.String()+`"`)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if m, err = repo.Manifest(d); err != nil {
		storeError(w, err, errManifestUnknown)
		return
	}
	if r.Header.Get("If-Match") != "" && !etagMatches(r, "If-Match", d) {
		writeError(w, errorCode{"PRECONDITION_FAILED", "If-Match does not match the manifest", http.StatusPreconditionFailed}, nil)
		return
	}
	// Content negotiation, as the v3 registry does it: OCI manifests and
	// indexes only to clients that accept them, and in place of a Docker
	// manifest list pulled by tag by a client that does not accept lists,
	// its linux/amd64 image.
	accept := acceptedTypes(r)
	switch m.MediaType() {
	case regstore.MediaTypeOCIManifest:
		if !accept[regstore.MediaTypeOCIManifest] {
			writeError(w, errorCode{errManifestUnknown.value, "OCI manifest found, but accept header does not support OCI manifests", errManifestUnknown.status}, nil)
			return
		}
	case regstore.MediaTypeOCIIndex:
		if !accept[regstore.MediaTypeOCIIndex] {
			writeError(w, errorCode{errManifestUnknown.value, "OCI index found, but accept header does not support OCI indexes", errManifestUnknown.status}, nil)
			return
		}
	case regstore.MediaTypeDockerManifestList:
		if !isDigestRef(ref) && !accept[regstore.MediaTypeDockerManifestList] {
			var child digest.Digest
			for _, c := range m.Children() {
				if c.Platform != nil && c.Platform.Architecture == "amd64" && c.Platform.OS == "linux" {
					child = c.Digest
					break
				}
			}
			if child == "" {
				writeError(w, errManifestUnknown, nil)
				return
			}
			if m, err = repo.Manifest(child); err != nil {
				storeError(w, err, errManifestUnknown)
				return
			}
			if m.MediaType() == regstore.MediaTypeDockerManifest && !accept[regstore.MediaTypeDockerManifest] {
				writeError(w, errorCode{errManifestInvalid.value, "Schema 2 manifest not supported by client", errManifestInvalid.status}, nil)
				return
			}
			d = child
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType())
	hd.Set("Content-Length", strconv.FormatInt(m.Size(), 10))
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Etag", `"`+d.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Bytes())
	}
}

// putManifest answers PUT /v2/<name>/manifests/<reference>, with the OCI
// 1.1 tag parameters (?tag=) when the reference is a digest.
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, regstore.MaxManifestSize+1))
	if err != nil {
		writeError(w, errManifestInvalid, err)
		return
	}
	if len(raw) > regstore.MaxManifestSize {
		// The registry reads the body through a 4 MiB limit and reports
		// the reader's error as an invalid manifest.
		writeError(w, errManifestInvalid, "http: request body too large")
		return
	}
	var want digest.Digest // the digest the client pushed by
	var tags []string
	if isDigestRef(ref) {
		if want, err = parseDigest(ref); err != nil {
			writeError(w, errDigestInvalid, err)
			return
		}
		if got := want.Algorithm().FromBytes(raw); got != want {
			writeError(w, errDigestInvalid, fmt.Sprintf("content digest %s does not match %s", got, want))
			return
		}
		tags = r.URL.Query()["tag"]
	} else {
		tags = []string{ref}
	}
	for _, t := range tags {
		if err := regstore.ValidateTag(t); err != nil {
			writeError(w, errTagInvalid, err)
			return
		}
	}
	mediaType := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	// Tags are set only after the references are checked again below, so
	// that a failed push never leaves a tag on a broken manifest.
	m, err := repo.PutManifest(mediaType, raw)
	if err != nil {
		switch {
		case errors.Is(err, regstore.ErrManifestBlobUnknown):
			writeError(w, errManifestBlobUnknown, err)
		case errors.Is(err, regstore.ErrManifestInvalid):
			writeError(w, errManifestInvalid, err)
		default:
			storeError(w, err, errManifestUnknown)
		}
		return
	}
	if err := h.recheckReferences(repo, m); err != nil {
		writeError(w, errManifestBlobUnknown, err)
		return
	}
	d := m.Digest()
	if want != "" && want != d {
		// Pushed by a digest of another algorithm: the registry's
		// revision link for that digest names the stored (sha256) data,
		// as a blob's alias link does, and tags point at it.
		if err := h.writeLink(h.store.Layout().RevisionLink(repo.Name(), want), d); err != nil {
			storeError(w, err, errManifestUnknown)
			return
		}
		for _, name := range tags {
			t, _ := repo.Tag(name)
			if err := t.Set(want); err != nil {
				storeError(w, err, errManifestUnknown)
				return
			}
		}
		d = want
	} else {
		for _, name := range tags {
			t, _ := repo.Tag(name)
			if err := t.Set(d); err != nil {
				storeError(w, err, errManifestUnknown)
				return
			}
		}
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo.Name()+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if s, ok := m.Subject(); ok {
		hd.Set("OCI-Subject", s.Digest.String())
	}
	if want != "" {
		for _, t := range tags {
			hd.Add("OCI-Tag", t)
		}
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// recheckReferences looks again, after a manifest is published, for what
// it references: a garbage collection in another process may have removed
// a blob's link (or data) between the push's check and its publication,
// in the narrow window the collector leaves. A missing link whose data is
// there is written again; missing data is reported, so that the client
// pushes the blob again (its HEAD now answers unknown), which heals the
// manifest.
func (h *Handler) recheckReferences(repo *regstore.Repository, m *regstore.Manifest) error {
	for d := range m.Blobs() {
		if len(d.URLs) > 0 {
			continue
		}
		_, err := repo.Blob(d.Digest)
		if errors.Is(err, fs.ErrNotExist) {
			if _, err := repo.LinkBlob(d.Digest); err != nil {
				return fmt.Errorf("blob %s was removed while the manifest was pushed: %w", d.Digest, err)
			}
		} else if err != nil {
			return fmt.Errorf("blob %s cannot be checked: %w", d.Digest, err)
		}
	}
	for _, c := range m.Children() {
		if _, err := repo.Manifest(c.Digest); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("child manifest %s was removed while the index was pushed: %w", c.Digest, err)
		} else if err != nil {
			return fmt.Errorf("child manifest %s cannot be checked: %w", c.Digest, err)
		}
	}
	return nil
}

// writeLink publishes a link file holding d at name.
func (h *Handler) writeLink(name string, d digest.Digest) error {
	f, err := h.w.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, d.String()); err != nil {
		return errors.Join(err, f.Cancel())
	}
	return f.Commit()
}

// deleteManifest answers DELETE /v2/<name>/manifests/<reference>: a tag,
// or a manifest with every tag pointing at it.
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	if !isDigestRef(ref) {
		if !h.opts.DeleteTags {
			writeError(w, errUnsupported, nil)
			return
		}
		t, err := repo.Tag(ref)
		if err != nil {
			writeError(w, errTagInvalid, err)
			return
		}
		if err := t.Delete(); err != nil {
			storeError(w, err, errManifestUnknown)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if !h.opts.DeleteManifests {
		writeError(w, errUnsupported, nil)
		return
	}
	d, err := parseDigest(ref)
	if err != nil {
		writeError(w, errDigestInvalid, err)
		return
	}
	if err := repo.DeleteManifest(d); err != nil {
		storeError(w, err, errManifestUnknown)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

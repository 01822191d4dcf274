package server

import (
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// Options configures a [Handler]. The zero value serves reads and pushes
// and refuses deletes, as the registry's default configuration does.
type Options struct {
	// ReadOnly refuses every write (pushes, mounts, deletes, upload
	// sessions) as the registry's read-only maintenance mode does: with
	// 405 Method Not Allowed and an Allow header, as for a method the
	// route does not have. A store whose backend cannot be written is
	// served read-only whatever this says.
	ReadOnly bool
	// DeleteManifests allows DELETE /v2/<name>/manifests/<digest>.
	DeleteManifests bool
	// DeleteTags allows DELETE /v2/<name>/manifests/<tag>.
	DeleteTags bool
	// DeleteBlobs allows DELETE /v2/<name>/blobs/<digest>, which removes
	// the blob's link from the repository (its data stays until garbage
	// collection, as with the registry).
	DeleteBlobs bool
}

// AllDeletes returns o with every delete allowed: the registry's
// storage.delete.enabled.
func (o Options) AllDeletes() Options {
	o.DeleteManifests, o.DeleteTags, o.DeleteBlobs = true, true, true
	return o
}

// Handler serves a [regstore.Store] over the OCI distribution API (v1.1)
// and the registry's /v2/_catalog. It is safe for concurrent use, keeps no
// state of its own besides a cache of what immutable manifests refer to,
// and may share its store with other writers, a live registry among them.
type Handler struct {
	store    *regstore.Store
	w        regstore.WriteFS // nil when read-only
	opts     Options
	subjects sync.Map // canonical manifest digest -> referrerInfo
	// writes is held shared by every request that publishes blobs, links
	// or tags, and exclusively by Exclusive.
	writes sync.RWMutex
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler serving s with opts.
func New(s *regstore.Store, opts Options) *Handler {
	h := &Handler{store: s, opts: opts}
	if w, err := s.Writer(); err == nil && !opts.ReadOnly {
		h.w = w
	}
	return h
}

// NewMemory returns a handler over a fresh, empty store in memory, and
// the store, which may be read and written while the handler serves it.
func NewMemory(opts Options) (*regstore.Store, *Handler) {
	s, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		panic(err) // Open does no I/O and cannot fail without options
	}
	return s, New(s, opts)
}

// Store is the store the handler serves.
func (h *Handler) Store() *regstore.Store { return h.store }

// Exclusive runs fn while no request of the handler publishes anything:
// requests that would (blob uploads completing, mounts, manifest pushes,
// deletes) wait until fn returns, reads and chunk uploads go on. It is
// meant for a garbage collection in the same process, which then cannot
// race a push: see the package documentation. It does nothing about other
// processes writing the same tree.
func (h *Handler) Exclusive(fn func() error) error {
	h.writes.Lock()
	defer h.writes.Unlock()
	return fn()
}

// readOnly reports whether writes are refused.
func (h *Handler) readOnly() bool { return h.w == nil }

// A route is what a request path names.
type route int

const (
	routeNone route = iota
	routeBase
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeReferrers
)

// parsePath splits a request path below /v2/ into its route, repository
// name and last element (reference, digest or upload id). Repository
// names may hold slashes, so the route is found from the end.
func parsePath(p string) (rt route, name, ref string) {
	if p == "/v2" || p == "/v2/" {
		return routeBase, "", ""
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return routeNone, "", ""
	}
	if rest == "_catalog" {
		return routeCatalog, "", ""
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	join := func(k int) string { return strings.Join(seg[:k], "/") }
	switch {
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		return routeTags, join(n - 2), ""
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		if seg[n-1] == "" {
			return routeUploadStart, join(n - 3), ""
		}
		return routeUpload, join(n - 3), seg[n-1]
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		return routeUploadStart, join(n - 2), ""
	case n >= 3 && seg[n-2] == "manifests":
		return routeManifest, join(n - 2), seg[n-1]
	case n >= 3 && seg[n-2] == "blobs":
		return routeBlob, join(n - 2), seg[n-1]
	case n >= 3 && seg[n-2] == "referrers":
		return routeReferrers, join(n - 2), seg[n-1]
	}
	return routeNone, "", ""
}

// ServeHTTP answers one request of the distribution API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, name, ref := parsePath(r.URL.Path)
	if rt == routeNone {
		http.NotFound(w, r)
		return
	}
	if rt == routeBase || rt == routeCatalog {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		if rt == routeBase {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write([]byte("{}"))
			}
			return
		}
		h.catalog(w, r)
		return
	}
	// The methods each route has; writes only when writable.
	reads, writes := "GET, HEAD", ""
	switch rt {
	case routeTags, routeReferrers:
		reads = "GET"
	case routeManifest:
		writes = "DELETE, PUT"
	case routeBlob:
		writes = "DELETE"
	case routeUploadStart:
		writes = "POST"
	case routeUpload:
		writes = "DELETE, PATCH, PUT"
	}
	allowed := reads
	if !h.readOnly() && writes != "" {
		allowed = writes + ", " + reads
	}
	if !slices.Contains(strings.Split(allowed, ", "), r.Method) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allowed)
			w.WriteHeader(http.StatusOK)
			return
		}
		methodNotAllowed(w, allowed)
		return
	}
	repo, err := h.store.Repository(name)
	if err != nil {
		writeError(w, errNameInvalid, map[string]string{"name": name})
		return
	}
	if r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost {
		h.writes.RLock()
		defer h.writes.RUnlock()
	}
	switch rt {
	case routeTags:
		h.tags(w, r, repo)
	case routeReferrers:
		h.referrers(w, r, repo, ref)
	case routeManifest:
		switch r.Method {
		case http.MethodPut:
			h.putManifest(w, r, repo, ref)
		case http.MethodDelete:
			h.deleteManifest(w, r, repo, ref)
		default:
			h.getManifest(w, r, repo, ref)
		}
	case routeBlob:
		if r.Method == http.MethodDelete {
			h.deleteBlob(w, r, repo, ref)
		} else {
			h.getBlob(w, r, repo, ref)
		}
	case routeUploadStart:
		h.startUpload(w, r, repo)
	case routeUpload:
		switch r.Method {
		case http.MethodPatch:
			h.patchUpload(w, r, repo, ref)
		case http.MethodPut:
			h.putUpload(w, r, repo, ref)
		case http.MethodDelete:
			h.cancelUpload(w, r, repo, ref)
		default:
			h.uploadStatus(w, r, repo, ref)
		}
	}
}

// storeError answers with the registry's code for a store error, given
// the code for "not found".
func storeError(w http.ResponseWriter, err error, notFound errorCode) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, notFound, err)
	case errors.Is(err, regstore.ErrInvalidDigest):
		writeError(w, errDigestInvalid, err)
	case errors.Is(err, regstore.ErrInvalidTag):
		writeError(w, errTagInvalid, err)
	case errors.Is(err, regstore.ErrInvalidName):
		writeError(w, errNameInvalid, err)
	case errors.Is(err, errors.ErrUnsupported):
		writeError(w, errUnsupported, err)
	default:
		writeError(w, errUnknown, err)
	}
}

// parseDigest parses a digest of an algorithm the store knows.
func parseDigest(s string) (digest.Digest, error) {
	d := digest.Digest(s)
	if err := regstore.ValidateDigest(d); err != nil {
		return "", err
	}
	return d, nil
}

package server

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

// Catalog paging, as the registry's defaults: 100 names when n is not
// given, and n may not exceed 1000.
const (
	catalogDefaultEntries = 100
	catalogMaxEntries     = 1000
)

// pageSize parses the n parameter: -1 when absent, an error answered when
// it is not a number >= 0 (or above max, when max > 0).
func pageSize(w http.ResponseWriter, r *http.Request, max int) (int, bool) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return -1, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || (max > 0 && n > max) {
		writeError(w, errPaginationInvalid, map[string]string{"n": s})
		return 0, false
	}
	return n, true
}

// setLink sets the Link header of a page that has more after last, as the
// registry writes it: the request's URL with n and last replaced.
func setLink(w http.ResponseWriter, r *http.Request, n int, last string) {
	u := *r.URL
	u.Scheme, u.Host, u.Fragment = "", "", ""
	v := url.Values{}
	v.Set("n", strconv.Itoa(n))
	v.Set("last", last)
	u.RawQuery = v.Encode()
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// catalog answers GET /v2/_catalog, in the v3 registry's order (that of
// regstore.Store.Repositories), with n and last, and a Link header when
// more follow.
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) {
	n, ok := pageSize(w, r, catalogMaxEntries)
	if !ok {
		return
	}
	if n < 0 {
		n = catalogDefaultEntries
	}
	names := []string{}
	more := false
	if n > 0 {
		for repo, err := range h.store.RepositoriesAfter(r.URL.Query().Get("last")) {
			if err != nil {
				writeError(w, errUnknown, err)
				return
			}
			if len(names) == n {
				more = true
				break
			}
			names = append(names, repo.Name())
		}
	}
	if more {
		setLink(w, r, n, names[len(names)-1])
	}
	writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{names})
}

// tags answers GET /v2/<name>/tags/list, sorted, with n and last, and a
// Link header when more follow. A repository without a tags directory is
// NAME_UNKNOWN.
func (h *Handler) tags(w http.ResponseWriter, r *http.Request, repo *regstore.Repository) {
	n, ok := pageSize(w, r, 0)
	if !ok {
		return
	}
	// As the registry: without a tags directory (nothing was ever
	// tagged, or the repository does not exist) the name is unknown.
	if _, err := fs.Stat(h.store.FS(), h.store.Layout().Tags(repo.Name())); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			writeError(w, errNameUnknown, map[string]string{"name": repo.Name()})
		} else {
			writeError(w, errUnknown, err)
		}
		return
	}
	last := r.URL.Query().Get("last")
	tags := []string{}
	more := false
	if n != 0 {
		for t, err := range repo.Tags() {
			if err != nil {
				writeError(w, errUnknown, err)
				return
			}
			if t.Name() <= last {
				continue
			}
			if n > 0 && len(tags) == n {
				more = true
				break
			}
			tags = append(tags, t.Name())
		}
	}
	if more {
		setLink(w, r, n, tags[len(tags)-1])
	}
	writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{repo.Name(), tags})
}

// referrerInfo is what the referrers API needs of one manifest. Manifests
// are immutable, so it is cached by digest.
type referrerInfo struct {
	subject digest.Digest // "" when the manifest has none
	desc    v1.Descriptor
}

func (h *Handler) referrerInfo(repo *regstore.Repository, d digest.Digest) (referrerInfo, error) {
	if v, ok := h.subjects.Load(d); ok {
		return v.(referrerInfo), nil
	}
	m, err := repo.Manifest(d)
	if err != nil {
		return referrerInfo{}, err
	}
	info := referrerInfo{}
	if s, ok := m.Subject(); ok {
		info.subject = s.Digest
		info.desc = v1.Descriptor{
			MediaType:    m.MediaType(),
			Digest:       m.Digest(),
			Size:         m.Size(),
			ArtifactType: m.ArtifactType(),
			Annotations:  m.Annotations(),
		}
		if info.desc.ArtifactType == "" && !m.IsIndex() {
			// An image manifest without artifactType is typed by its
			// config, as the spec's referrers API says.
			if c, ok := m.Config(); ok {
				info.desc.ArtifactType = c.MediaType
			}
		}
		if len(info.desc.Annotations) == 0 {
			info.desc.Annotations = nil
		}
	}
	h.subjects.Store(d, info)
	return info, nil
}

// referrers answers GET /v2/<name>/referrers/<digest>: an image index of
// the repository's manifests whose subject is digest, found by reading
// them, filtered by ?artifactType= (then OCI-Filters-Applied says so).
// A subject with no referrers, or an unknown repository, gets an empty
// index.
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, repo *regstore.Repository, ref string) {
	subject, err := parseDigest(ref)
	if err != nil {
		writeError(w, errDigestInvalid, err)
		return
	}
	filter := r.URL.Query().Get("artifactType")
	index := v1.Index{
		Versioned: specsVersioned,
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{},
	}
	seen := map[digest.Digest]bool{}
	for d, err := range repo.Manifests() {
		if err != nil {
			writeError(w, errUnknown, err)
			return
		}
		info, err := h.referrerInfo(repo, d)
		if err != nil || info.subject != subject || seen[info.desc.Digest] {
			continue // unreadable manifests are no one's referrers
		}
		seen[info.desc.Digest] = true
		if filter != "" && info.desc.ArtifactType != filter {
			continue
		}
		index.Manifests = append(index.Manifests, info.desc)
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(index)
}

var specsVersioned = specs.Versioned{SchemaVersion: 2}

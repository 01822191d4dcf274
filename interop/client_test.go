package interop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The four manifest media types the registry serves.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

// manifestAccept is the Accept header sent for manifest requests.
var manifestAccept = strings.Join([]string{
	MediaTypeOCIIndex, MediaTypeOCIManifest, MediaTypeDockerList, MediaTypeDockerManifest,
}, ", ")

var httpClient = &http.Client{
	Timeout: 20 * time.Second,
	// Never follow redirects silently: the filesystem driver serves blobs
	// directly, a redirect would be a surprise worth seeing.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// HTTPResult is a fully read HTTP response.
type HTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// httpDo performs one request and reads the whole body. Transport errors
// fail the test; HTTP error statuses are returned.
func httpDo(t testing.TB, method, rawURL string, header http.Header, body []byte) HTTPResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	require.NoError(t, err)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, rawURL)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "%s %s: reading body", method, rawURL)
	return HTTPResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

var linkNextRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink resolves the rel="next" Link header against base, or "".
func nextLink(t testing.TB, base string, h http.Header) string {
	t.Helper()
	for _, l := range h.Values("Link") {
		if m := linkNextRE.FindStringSubmatch(l); m != nil {
			b, err := url.Parse(base)
			require.NoError(t, err)
			n, err := b.Parse(m[1])
			require.NoError(t, err, "bad Link header %q", l)
			return n.String()
		}
	}
	return ""
}

// catalog lists /v2/_catalog in the order the registry returns it,
// following Link pagination. pageSize 0 sends no n parameter.
func catalog(t testing.TB, host string, pageSize int) []string {
	t.Helper()
	u := "http://" + host + "/v2/_catalog"
	if pageSize > 0 {
		u += "?n=" + strconv.Itoa(pageSize)
	}
	repos := []string{}
	for pages := 0; u != ""; pages++ {
		require.Less(t, pages, 10000, "catalog pagination does not end")
		res := httpDo(t, http.MethodGet, u, nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "GET %s: %s", u, res.Body)
		var body struct {
			Repositories []string `json:"repositories"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &body), "GET %s: %s", u, res.Body)
		repos = append(repos, body.Repositories...)
		u = nextLink(t, u, res.Header)
	}
	return repos
}

// listTags returns GET /v2/<repo>/tags/list (following pagination) and the
// status of the first page. On a non-200 status tags is nil.
func listTags(t testing.TB, host, repo string) (tags []string, status int) {
	t.Helper()
	u := "http://" + host + "/v2/" + repo + "/tags/list"
	tags = []string{}
	for first := true; u != ""; first = false {
		res := httpDo(t, http.MethodGet, u, nil, nil)
		if first {
			status = res.Status
		}
		if res.Status != http.StatusOK {
			if !first {
				t.Fatalf("GET %s (next page): %d %s", u, res.Status, res.Body)
			}
			return nil, res.Status
		}
		var body struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &body), "GET %s: %s", u, res.Body)
		tags = append(tags, body.Tags...)
		u = nextLink(t, u, res.Header)
	}
	return tags, status
}

// ManifestResult is what GET/HEAD /v2/<repo>/manifests/<ref> answered.
type ManifestResult struct {
	Status      int
	Body        []byte // empty for HEAD
	ContentType string
	Digest      string // Docker-Content-Digest
}

func manifestRequest(t testing.TB, method, host, repo, ref string) ManifestResult {
	t.Helper()
	res := httpDo(t, method, "http://"+host+"/v2/"+repo+"/manifests/"+ref,
		http.Header{"Accept": {manifestAccept}}, nil)
	return ManifestResult{
		Status: res.Status, Body: res.Body,
		ContentType: res.Header.Get("Content-Type"),
		Digest:      res.Header.Get("Docker-Content-Digest"),
	}
}

// getManifest fetches a manifest by tag or digest, accepting all four media types.
func getManifest(t testing.TB, host, repo, ref string) ManifestResult {
	t.Helper()
	return manifestRequest(t, http.MethodGet, host, repo, ref)
}

// headManifest is getManifest with HEAD.
func headManifest(t testing.TB, host, repo, ref string) ManifestResult {
	t.Helper()
	return manifestRequest(t, http.MethodHead, host, repo, ref)
}

// getBlob fetches GET /v2/<repo>/blobs/<digest>.
func getBlob(t testing.TB, host, repo, digest string) HTTPResult {
	t.Helper()
	return httpDo(t, http.MethodGet, "http://"+host+"/v2/"+repo+"/blobs/"+digest, nil, nil)
}

// headBlob returns the status of HEAD /v2/<repo>/blobs/<digest>.
func headBlob(t testing.TB, host, repo, digest string) int {
	t.Helper()
	return httpDo(t, http.MethodHead, "http://"+host+"/v2/"+repo+"/blobs/"+digest, nil, nil).Status
}

// deleteManifest sends DELETE /v2/<repo>/manifests/<digest> and returns the
// status (202 on success).
func deleteManifest(t testing.TB, host, repo, digest string) int {
	t.Helper()
	return httpDo(t, http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+digest, nil, nil).Status
}

// deleteTag sends DELETE /v2/<repo>/manifests/<tag>. Only v3 implements it
// (202); 2.8 answers 400 DIGEST_INVALID.
func deleteTag(t testing.TB, host, repo, tag string) int {
	t.Helper()
	return httpDo(t, http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil, nil).Status
}

// Upload is an open blob upload session.
type Upload struct {
	UUID     string // Docker-Upload-UUID: the _uploads/<uuid> directory name
	Location string // absolute URL for the next PATCH/PUT
}

// startUpload sends POST /v2/<repo>/blobs/uploads/ and requires 202.
func startUpload(t testing.TB, host, repo string) Upload {
	t.Helper()
	u := "http://" + host + "/v2/" + repo + "/blobs/uploads/"
	res := httpDo(t, http.MethodPost, u, nil, nil)
	require.Equal(t, http.StatusAccepted, res.Status, "POST %s: %s", u, res.Body)
	return uploadFrom(t, u, res)
}

func uploadFrom(t testing.TB, base string, res HTTPResult) Upload {
	t.Helper()
	loc := res.Header.Get("Location")
	require.NotEmpty(t, loc, "no Location header")
	b, err := url.Parse(base)
	require.NoError(t, err)
	l, err := b.Parse(loc)
	require.NoError(t, err)
	id := res.Header.Get("Docker-Upload-UUID")
	require.NotEmpty(t, id, "no Docker-Upload-UUID header")
	return Upload{UUID: id, Location: l.String()}
}

// patchUpload appends data to an upload (PATCH, 202) and returns the
// session with the new Location.
func patchUpload(t testing.TB, up Upload, data []byte) Upload {
	t.Helper()
	res := httpDo(t, http.MethodPatch, up.Location,
		http.Header{"Content-Type": {"application/octet-stream"}}, data)
	require.Equal(t, http.StatusAccepted, res.Status, "PATCH %s: %s", up.Location, res.Body)
	return uploadFrom(t, up.Location, res)
}

// manifestRefs extracts the referenced digests of a manifest body:
// config and layers for an image manifest, children for an index/list.
func manifestRefs(t testing.TB, body []byte) (mediaType string, blobs, children []string) {
	t.Helper()
	var m struct {
		MediaType string `json:"mediaType"`
		Config    *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(body, &m), "manifest JSON: %s", body)
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, c := range m.Manifests {
		children = append(children, c.Digest)
	}
	return m.MediaType, blobs, children
}

package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ociAccept = v1.MediaTypeImageManifest + ", " + v1.MediaTypeImageIndex + ", " +
	regstore.MediaTypeDockerManifest + ", " + regstore.MediaTypeDockerManifestList

// client talks to a handler under test.
type client struct {
	t   testing.TB
	srv *httptest.Server
}

func newClient(t testing.TB, h http.Handler) *client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &client{t: t, srv: srv}
}

// do sends a request; url is a path (with query) or an absolute URL.
func (c *client) do(method, url string, body []byte, header ...string) *http.Response {
	c.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = c.srv.URL + url
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(c.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.srv.Client().Do(req)
	require.NoError(c.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func body(t testing.TB, resp *http.Response) []byte {
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// errorCode is the code of the first error of a JSON error envelope.
func errorCode(t testing.TB, resp *http.Response) string {
	t.Helper()
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	b := body(t, resp)
	require.NoError(t, json.Unmarshal(b, &env), "error body %q", b)
	require.NotEmpty(t, env.Errors, "error body %q", b)
	assert.NotEmpty(t, env.Errors[0].Message)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return env.Errors[0].Code
}

// pushBlob uploads content monolithically (POST then PUT) and returns its
// digest.
func (c *client) pushBlob(repo string, content []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(content)
	resp := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	require.Equal(c.t, http.StatusAccepted, resp.StatusCode)
	loc := resp.Header.Get("Location")
	resp = c.do("PUT", loc+"?digest="+d.String(), content, "Content-Type", "application/octet-stream")
	require.Equal(c.t, http.StatusCreated, resp.StatusCode, "PUT blob: %s", body(c.t, resp))
	return d
}

// image is a small OCI image: config, one layer, and the manifest.
type image struct {
	config, layer, manifest []byte
	digest                  digest.Digest
}

func newImage(t testing.TB, seed string, subject *v1.Descriptor, artifactType string) image {
	img := image{config: []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`), layer: []byte("layer " + seed)}
	configType := v1.MediaTypeImageConfig
	if artifactType != "" {
		configType = v1.MediaTypeEmptyJSON
		img.config = []byte("{}")
	}
	m := v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       v1.Descriptor{MediaType: configType, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))},
		Layers:       []v1.Descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: digest.FromBytes(img.layer), Size: int64(len(img.layer))}},
		Subject:      subject,
	}
	var err error
	img.manifest, err = json.Marshal(m)
	require.NoError(t, err)
	img.digest = digest.FromBytes(img.manifest)
	return img
}

func (c *client) pushImage(repo, ref string, img image) *http.Response {
	c.t.Helper()
	c.pushBlob(repo, img.config)
	c.pushBlob(repo, img.layer)
	return c.do("PUT", "/v2/"+repo+"/manifests/"+ref, img.manifest, "Content-Type", v1.MediaTypeImageManifest)
}

func TestBase(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	resp := c.do("GET", "/v2/", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "{}", string(body(t, resp)))
	assert.Equal(t, "registry/2.0", resp.Header.Get("Docker-Distribution-API-Version"))
	assert.Equal(t, http.StatusNotFound, c.do("GET", "/v1/", nil).StatusCode)
	assert.Equal(t, http.StatusNotFound, c.do("GET", "/v2/a/unknown/x", nil).StatusCode)
}

func TestPushAndPullManifest(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	resp := c.pushImage("library/app", "v1", img)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
	assert.Equal(t, img.digest.String(), resp.Header.Get("Docker-Content-Digest"))
	assert.Equal(t, "/v2/library/app/manifests/"+img.digest.String(), resp.Header.Get("Location"))
	assert.Empty(t, resp.Header.Get("OCI-Subject"))

	// The store holds what the registry would: the tag resolves.
	repo, err := s.Repository("library/app")
	require.NoError(t, err)
	tag, err := repo.Tag("v1")
	require.NoError(t, err)
	m, err := tag.Resolve()
	require.NoError(t, err)
	assert.Equal(t, img.digest, m.Digest())

	for _, ref := range []string{"v1", img.digest.String()} {
		for _, method := range []string{"GET", "HEAD"} {
			resp := c.do(method, "/v2/library/app/manifests/"+ref, nil, "Accept", ociAccept)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", method, ref)
			assert.Equal(t, v1.MediaTypeImageManifest, resp.Header.Get("Content-Type"))
			assert.Equal(t, img.digest.String(), resp.Header.Get("Docker-Content-Digest"))
			assert.Equal(t, fmt.Sprint(len(img.manifest)), resp.Header.Get("Content-Length"))
			assert.Equal(t, `"`+img.digest.String()+`"`, resp.Header.Get("Etag"))
			if method == "GET" {
				assert.Equal(t, img.manifest, body(t, resp))
			} else {
				assert.Empty(t, body(t, resp))
			}
		}
	}
	// Conditional requests.
	resp = c.do("GET", "/v2/library/app/manifests/v1", nil, "Accept", ociAccept, "If-None-Match", `"`+img.digest.String()+`"`)
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	resp = c.do("GET", "/v2/library/app/manifests/v1", nil, "Accept", ociAccept, "If-None-Match", `"sha256:other"`)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp = c.do("GET", "/v2/library/app/manifests/v1", nil, "Accept", ociAccept, "If-Match", `"sha256:other"`)
	assert.Equal(t, http.StatusPreconditionFailed, resp.StatusCode)
	// As the v3 registry: no OCI manifest to a client that does not accept it.
	resp = c.do("GET", "/v2/library/app/manifests/v1", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "MANIFEST_UNKNOWN", errorCode(t, resp))
}

func TestManifestErrors(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	missing := digest.FromString("missing")
	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"unknown tag", "GET", "/v2/a/manifests/nope", nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown digest", "GET", "/v2/a/manifests/" + missing.String(), nil, 404, "MANIFEST_UNKNOWN"},
		{"bad digest", "GET", "/v2/a/manifests/sha256:abc", nil, 400, "DIGEST_INVALID"},
		{"bad name", "GET", "/v2/A/manifests/latest", nil, 400, "NAME_INVALID"},
		{"blobs not pushed", "PUT", "/v2/a/manifests/v1", img.manifest, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"not a manifest", "PUT", "/v2/a/manifests/v1", []byte("{nope"), 400, "MANIFEST_INVALID"},
		{"digest mismatch", "PUT", "/v2/a/manifests/" + missing.String(), img.manifest, 400, "DIGEST_INVALID"},
		{"bad tag", "PUT", "/v2/a/manifests/-bad", img.manifest, 400, "TAG_INVALID"},
		{"too large", "PUT", "/v2/a/manifests/v1", bytes.Repeat([]byte(" "), regstore.MaxManifestSize+1), 400, "MANIFEST_INVALID"},
		{"delete disabled", "DELETE", "/v2/a/manifests/" + missing.String(), nil, 405, "UNSUPPORTED"},
		{"tag delete disabled", "DELETE", "/v2/a/manifests/v1", nil, 405, "UNSUPPORTED"},
		{"blob delete disabled", "DELETE", "/v2/a/blobs/" + missing.String(), nil, 405, "UNSUPPORTED"},
		{"unknown blob", "GET", "/v2/a/blobs/" + missing.String(), nil, 404, "BLOB_UNKNOWN"},
		{"unknown upload", "GET", "/v2/a/blobs/uploads/nope", nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload id ..", "DELETE", "/v2/a/blobs/uploads/..", nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown repository tags", "GET", "/v2/a/tags/list", nil, 404, "NAME_UNKNOWN"},
		{"bad n", "GET", "/v2/_catalog?n=-1", nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"n over the maximum", "GET", "/v2/_catalog?n=1001", nil, 400, "PAGINATION_NUMBER_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.do(tc.method, tc.path, tc.body, "Content-Type", v1.MediaTypeImageManifest, "Accept", ociAccept)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.method != "HEAD" {
				assert.Equal(t, tc.code, errorCode(t, resp))
			}
		})
	}
}

func TestBlobRangesAndConditions(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	content := []byte("0123456789abcdef")
	d := c.pushBlob("a/b", content)
	url := "/v2/a/b/blobs/" + d.String()

	resp := c.do("GET", url, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, content, body(t, resp))
	assert.Equal(t, d.String(), resp.Header.Get("Docker-Content-Digest"))
	assert.Equal(t, "16", resp.Header.Get("Content-Length"))
	assert.Equal(t, `"`+d.String()+`"`, resp.Header.Get("Etag"))
	assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))

	resp = c.do("HEAD", url, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "16", resp.Header.Get("Content-Length"))
	assert.Empty(t, body(t, resp))

	for _, tc := range []struct {
		rng, want, contentRange string
	}{
		{"bytes=2-5", "2345", "bytes 2-5/16"},
		{"bytes=10-", "abcdef", "bytes 10-15/16"},
		{"bytes=-3", "def", "bytes 13-15/16"},
	} {
		resp := c.do("GET", url, nil, "Range", tc.rng)
		assert.Equal(t, http.StatusPartialContent, resp.StatusCode, tc.rng)
		assert.Equal(t, tc.want, string(body(t, resp)), tc.rng)
		assert.Equal(t, tc.contentRange, resp.Header.Get("Content-Range"), tc.rng)
	}
	assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, c.do("GET", url, nil, "Range", "bytes=16-").StatusCode)
	assert.Equal(t, http.StatusNotModified, c.do("GET", url, nil, "If-None-Match", `"`+d.String()+`"`).StatusCode)
	assert.Equal(t, http.StatusPreconditionFailed, c.do("GET", url, nil, "If-Match", `"sha256:x"`).StatusCode)
	assert.Equal(t, http.StatusOK, c.do("GET", url, nil, "If-Match", `"`+d.String()+`"`).StatusCode)
	// Not linked in another repository.
	resp = c.do("GET", "/v2/other/blobs/"+d.String(), nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "BLOB_UNKNOWN", errorCode(t, resp))
}

// backends are the stores the upload tests run on.
func backends(t *testing.T) map[string]func(t *testing.T) *regstore.Store {
	return map[string]func(t *testing.T) *regstore.Store{
		"MemFS": func(t *testing.T) *regstore.Store {
			s, err := regstore.Open(regstore.NewMemFS())
			require.NoError(t, err)
			return s
		},
		"Dir": func(t *testing.T) *regstore.Store {
			d, err := regstore.OpenDir(t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			s, err := regstore.Open(d)
			require.NoError(t, err)
			return s
		},
	}
}

func TestChunkedUpload(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			c := newClient(t, server.New(s, server.Options{}))
			content := bytes.Repeat([]byte("chunky "), 3000) // 21000 bytes
			d := digest.FromBytes(content)

			resp := c.do("POST", "/v2/a/blobs/uploads/", nil)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			assert.Equal(t, "0-0", resp.Header.Get("Range"))
			id := resp.Header.Get("Docker-Upload-UUID")
			loc := resp.Header.Get("Location")
			require.Equal(t, "/v2/a/blobs/uploads/"+id, loc)

			// The session is where the registry keeps its own.
			started, err := fs.ReadFile(s.FS(), s.Layout().UploadStartedAt("a", id))
			require.NoError(t, err)
			ts, err := time.Parse(time.RFC3339, string(started))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now(), ts, time.Minute)
			repo, _ := s.Repository("a")
			var ids []string
			for u, err := range repo.Uploads() {
				require.NoError(t, err)
				ids = append(ids, u.ID)
				// Its age is readable, so upload purging applies.
				assert.Equal(t, ts, u.StartedAt.UTC())
			}
			assert.Equal(t, []string{id}, ids)

			chunks := [][2]int{{0, 10000}, {10000, 15000}, {15000, 20000}}
			for i, ch := range chunks {
				part := content[ch[0]:ch[1]]
				resp := c.do("PATCH", loc, part, "Content-Type", "application/octet-stream",
					"Content-Range", fmt.Sprintf("%d-%d", ch[0], ch[1]-1))
				require.Equal(t, http.StatusAccepted, resp.StatusCode, "chunk %d: %s", i, body(t, resp))
				assert.Equal(t, fmt.Sprintf("0-%d", ch[1]-1), resp.Header.Get("Range"))
				loc = resp.Header.Get("Location")
				// A chunk out of order is refused, and changes nothing.
				resp = c.do("PATCH", loc, []byte("x"), "Content-Range", fmt.Sprintf("%d-%d", ch[0], ch[0]))
				assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
				assert.Equal(t, "RANGE_INVALID", errorCode(t, resp))
			}
			// A chunk whose length disagrees with its range.
			resp = c.do("PATCH", loc, []byte("xy"), "Content-Range", "20000-20000")
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "SIZE_INVALID", errorCode(t, resp))
			resp = c.do("GET", loc, nil)
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Equal(t, "0-19999", resp.Header.Get("Range"))
			// The first chunk is the registry's data file.
			fi, err := fs.Stat(s.FS(), s.Layout().UploadData("a", id))
			require.NoError(t, err)
			assert.EqualValues(t, 10000, fi.Size())

			// A chunk without Content-Range (streamed), then the last one
			// with the PUT.
			resp = c.do("PATCH", loc, content[20000:20500])
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			resp = c.do("PUT", loc+"?digest="+d.String(), content[20500:])
			require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
			assert.Equal(t, d.String(), resp.Header.Get("Docker-Content-Digest"))
			assert.Equal(t, "/v2/a/blobs/"+d.String(), resp.Header.Get("Location"))

			// Published through the store, session gone.
			b, err := repo.Blob(d)
			require.NoError(t, err)
			assert.NoError(t, b.Verify())
			_, err = fs.Stat(s.FS(), s.Layout().Upload("a", id))
			assert.ErrorIs(t, err, fs.ErrNotExist)
			assert.Equal(t, http.StatusNotFound, c.do("GET", loc, nil).StatusCode)
			got := c.do("GET", "/v2/a/blobs/"+d.String(), nil)
			assert.Equal(t, content, body(t, got))
		})
	}
}

func TestUploadDigestMismatchAndCancel(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	resp := c.do("POST", "/v2/a/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	resp = c.do("PATCH", loc, []byte("abc"))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp = c.do("PUT", loc, nil)
	assert.Equal(t, "DIGEST_INVALID", errorCode(t, resp), "PUT without digest")
	resp = c.do("PUT", loc+"?digest="+digest.FromString("abd").String(), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "DIGEST_INVALID", errorCode(t, resp))
	// A failed commit ends the session, as in the registry.
	assert.Equal(t, http.StatusNotFound, c.do("GET", loc, nil).StatusCode)
	_, err := s.Blob(digest.FromString("abd"))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	resp = c.do("POST", "/v2/a/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	c.do("PATCH", loc, []byte("abc"))
	resp = c.do("DELETE", loc, nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, http.StatusNotFound, c.do("GET", loc, nil).StatusCode)
	assert.Equal(t, http.StatusNotFound, c.do("DELETE", loc, nil).StatusCode)
	repo, _ := s.Repository("a")
	for u, err := range repo.Uploads() {
		require.NoError(t, err)
		t.Errorf("upload %s left behind", u.ID)
	}
}

func TestMonolithicPostAndMount(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	content := []byte("monolithic")
	d := digest.FromBytes(content)
	resp := c.do("POST", "/v2/a/blobs/uploads/?digest="+d.String(), content, "Content-Type", "application/octet-stream")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
	assert.Equal(t, "/v2/a/blobs/"+d.String(), resp.Header.Get("Location"))
	resp = c.do("POST", "/v2/a/blobs/uploads/?digest="+digest.FromString("x").String(), content)
	assert.Equal(t, "DIGEST_INVALID", errorCode(t, resp))

	// Mount from a repository that has it: 201, a link, no upload.
	resp = c.do("POST", "/v2/b/blobs/uploads/?mount="+d.String()+"&from=a", nil)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, d.String(), resp.Header.Get("Docker-Content-Digest"))
	repo, _ := s.Repository("b")
	_, err := repo.Blob(d)
	assert.NoError(t, err)
	// From one that does not: a new session.
	other := digest.FromString("other")
	resp = c.do("POST", "/v2/c/blobs/uploads/?mount="+other.String()+"&from=a", nil)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Docker-Upload-UUID"))
	// Without from: from any repository.
	resp = c.do("POST", "/v2/d/blobs/uploads/?mount="+d.String(), nil)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
}

func TestSubjectAndReferrers(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "base", nil, "")
	require.Equal(t, http.StatusCreated, c.pushImage("a", "v1", img).StatusCode)
	subject := &v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.manifest))}
	sig := newImage(t, "sig", subject, "application/vnd.example.sig")
	sbom := newImage(t, "sbom", subject, "application/vnd.example.sbom")
	for _, r := range []image{sig, sbom} {
		resp := c.pushImage("a", r.digest.String(), r)
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
		assert.Equal(t, img.digest.String(), resp.Header.Get("OCI-Subject"))
	}
	get := func(query string) (v1.Index, *http.Response) {
		resp := c.do("GET", "/v2/a/referrers/"+img.digest.String()+query, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, v1.MediaTypeImageIndex, resp.Header.Get("Content-Type"))
		var idx v1.Index
		require.NoError(t, json.Unmarshal(body(t, resp), &idx))
		assert.Equal(t, v1.MediaTypeImageIndex, idx.MediaType)
		return idx, resp
	}
	idx, resp := get("")
	assert.Empty(t, resp.Header.Get("OCI-Filters-Applied"))
	types := map[digest.Digest]string{}
	for _, m := range idx.Manifests {
		types[m.Digest] = m.ArtifactType
		assert.Equal(t, v1.MediaTypeImageManifest, m.MediaType)
	}
	assert.Equal(t, map[digest.Digest]string{sig.digest: "application/vnd.example.sig", sbom.digest: "application/vnd.example.sbom"}, types)

	idx, resp = get("?artifactType=application/vnd.example.sbom")
	assert.Equal(t, "artifactType", resp.Header.Get("OCI-Filters-Applied"))
	require.Len(t, idx.Manifests, 1)
	assert.Equal(t, sbom.digest, idx.Manifests[0].Digest)

	// None: an empty index, also for an unknown repository.
	resp = c.do("GET", "/v2/nope/referrers/"+sig.digest.String(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, string(body(t, resp)))
	resp = c.do("GET", "/v2/a/referrers/sha256:bad", nil)
	assert.Equal(t, "DIGEST_INVALID", errorCode(t, resp))
}

func TestTagParameters(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	c.pushBlob("a", img.config)
	c.pushBlob("a", img.layer)
	resp := c.do("PUT", "/v2/a/manifests/"+img.digest.String(), img.manifest, "Content-Type", v1.MediaTypeImageManifest)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Empty(t, resp.Header.Values("OCI-Tag"))
	// Never tagged: no tags directory, which the registry answers with
	// NAME_UNKNOWN.
	assert.Equal(t, "NAME_UNKNOWN", errorCode(t, c.do("GET", "/v2/a/tags/list", nil)))
	resp = c.do("PUT", "/v2/a/manifests/"+img.digest.String()+"?tag=x&tag=y", img.manifest, "Content-Type", v1.MediaTypeImageManifest)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, []string{"x", "y"}, resp.Header.Values("OCI-Tag"))
	repo, _ := s.Repository("a")
	for _, name := range []string{"x", "y"} {
		tag, _ := repo.Tag(name)
		d, err := tag.Digest()
		require.NoError(t, err)
		assert.Equal(t, img.digest, d)
	}
}

func TestSHA512(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	content := []byte("sha512 content")
	d := digest.SHA512.FromBytes(content)
	resp := c.do("POST", "/v2/a/blobs/uploads/?digest="+d.String(), content)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
	resp = c.do("GET", "/v2/a/blobs/"+d.String(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, content, body(t, resp))
	assert.Equal(t, d.String(), resp.Header.Get("Docker-Content-Digest"))

	c.pushBlob("a", img.config)
	c.pushBlob("a", img.layer)
	md := digest.SHA512.FromBytes(img.manifest)
	resp = c.do("PUT", "/v2/a/manifests/"+md.String()+"?tag=t", img.manifest, "Content-Type", v1.MediaTypeImageManifest)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
	assert.Equal(t, md.String(), resp.Header.Get("Docker-Content-Digest"))
	for _, ref := range []string{md.String(), "t"} {
		resp = c.do("GET", "/v2/a/manifests/"+ref, nil, "Accept", ociAccept)
		require.Equal(t, http.StatusOK, resp.StatusCode, ref)
		assert.Equal(t, img.manifest, body(t, resp))
		assert.Equal(t, md.String(), resp.Header.Get("Docker-Content-Digest"))
	}
	// The data is stored once, under its sha256 digest.
	_, err := s.Blob(img.digest)
	assert.NoError(t, err)
}

func TestDeletes(t *testing.T) {
	s, h := server.NewMemory(server.Options{}.AllDeletes())
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	require.Equal(t, http.StatusCreated, c.pushImage("a", "v1", img).StatusCode)
	require.Equal(t, http.StatusCreated, c.do("PUT", "/v2/a/manifests/v2", img.manifest, "Content-Type", v1.MediaTypeImageManifest).StatusCode)

	assert.Equal(t, http.StatusAccepted, c.do("DELETE", "/v2/a/manifests/v2", nil).StatusCode)
	assert.Equal(t, "MANIFEST_UNKNOWN", errorCode(t, c.do("DELETE", "/v2/a/manifests/v2", nil)))
	assert.Equal(t, http.StatusOK, c.do("GET", "/v2/a/manifests/v1", nil, "Accept", ociAccept).StatusCode)

	assert.Equal(t, http.StatusAccepted, c.do("DELETE", "/v2/a/manifests/"+img.digest.String(), nil).StatusCode)
	assert.Equal(t, http.StatusNotFound, c.do("GET", "/v2/a/manifests/v1", nil, "Accept", ociAccept).StatusCode)
	assert.Equal(t, http.StatusNotFound, c.do("GET", "/v2/a/manifests/"+img.digest.String(), nil, "Accept", ociAccept).StatusCode)

	ld := digest.FromBytes(img.layer)
	assert.Equal(t, http.StatusAccepted, c.do("DELETE", "/v2/a/blobs/"+ld.String(), nil).StatusCode)
	assert.Equal(t, "BLOB_UNKNOWN", errorCode(t, c.do("GET", "/v2/a/blobs/"+ld.String(), nil)))
	assert.Equal(t, "BLOB_UNKNOWN", errorCode(t, c.do("DELETE", "/v2/a/blobs/"+ld.String(), nil)))
	// The data stays for garbage collection, as in the registry.
	_, err := s.Blob(ld)
	assert.NoError(t, err)

	// Each switch alone.
	_, h2 := server.NewMemory(server.Options{DeleteTags: true})
	c2 := newClient(t, h2)
	require.Equal(t, http.StatusCreated, c2.pushImage("a", "v1", img).StatusCode)
	assert.Equal(t, "UNSUPPORTED", errorCode(t, c2.do("DELETE", "/v2/a/manifests/"+img.digest.String(), nil)))
	assert.Equal(t, "UNSUPPORTED", errorCode(t, c2.do("DELETE", "/v2/a/blobs/"+ld.String(), nil)))
	assert.Equal(t, http.StatusAccepted, c2.do("DELETE", "/v2/a/manifests/v1", nil).StatusCode)
}

func TestReadOnly(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	img := newImage(t, "1", nil, "")
	c := newClient(t, server.New(s, server.Options{}))
	require.Equal(t, http.StatusCreated, c.pushImage("a", "v1", img).StatusCode)

	check := func(t *testing.T, h http.Handler) {
		c := newClient(t, h)
		for _, req := range [][2]string{
			{"POST", "/v2/a/blobs/uploads/"},
			{"PUT", "/v2/a/manifests/v2"},
			{"DELETE", "/v2/a/manifests/v1"},
			{"DELETE", "/v2/a/blobs/" + img.digest.String()},
			{"PATCH", "/v2/a/blobs/uploads/x"},
		} {
			resp := c.do(req[0], req[1], img.manifest)
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", req[0], req[1])
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
			assert.Equal(t, "Method not allowed\n", string(body(t, resp)))
		}
		assert.Equal(t, http.StatusOK, c.do("GET", "/v2/a/manifests/v1", nil, "Accept", ociAccept).StatusCode)
		assert.Equal(t, http.StatusOK, c.do("GET", "/v2/a/tags/list", nil).StatusCode)
	}
	t.Run("option", func(t *testing.T) { check(t, server.New(s, server.Options{ReadOnly: true}.AllDeletes())) })
	ro, err := regstore.Open(s.FS(), regstore.ReadOnly())
	require.NoError(t, err)
	t.Run("read-only store", func(t *testing.T) { check(t, server.New(ro, server.Options{})) })
	fsOnly, err := regstore.Open(struct{ fs.FS }{s.FS()})
	require.NoError(t, err)
	t.Run("read-only backend", func(t *testing.T) { check(t, server.New(fsOnly, server.Options{})) })
}

func TestTagsPaging(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	require.Equal(t, http.StatusCreated, c.pushImage("a", "v1", img).StatusCode)
	for _, tag := range []string{"b", "c", "a", "d"} {
		require.Equal(t, http.StatusCreated, c.do("PUT", "/v2/a/manifests/"+tag, img.manifest, "Content-Type", v1.MediaTypeImageManifest).StatusCode)
	}
	type page struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	list := func(url string) (page, string) {
		resp := c.do("GET", url, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var p page
		require.NoError(t, json.Unmarshal(body(t, resp), &p))
		return p, resp.Header.Get("Link")
	}
	p, link := list("/v2/a/tags/list")
	assert.Equal(t, page{"a", []string{"a", "b", "c", "d", "v1"}}, p)
	assert.Empty(t, link)

	var all []string
	url := "/v2/a/tags/list?n=2"
	for url != "" {
		p, link := list(url)
		assert.LessOrEqual(t, len(p.Tags), 2)
		all = append(all, p.Tags...)
		url = ""
		if link != "" {
			url = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	assert.Equal(t, []string{"a", "b", "c", "d", "v1"}, all)
	p, _ = list("/v2/a/tags/list?last=c")
	assert.Equal(t, []string{"d", "v1"}, p.Tags)
	p, link = list("/v2/a/tags/list?n=0")
	assert.Empty(t, p.Tags)
	assert.NotNil(t, p.Tags)
	assert.Empty(t, link)
}

func TestCatalog(t *testing.T) {
	_, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	img := newImage(t, "1", nil, "")
	for _, name := range []string{"b", "a.b", "a-b", "a/c", "a", "a/0"} {
		require.Equal(t, http.StatusCreated, c.pushImage(name, "v1", img).StatusCode)
	}
	// The v3 registry's order on its filesystem driver.
	want := []string{"a/0", "a", "a/c", "a-b", "a.b", "b"}
	var all []string
	url := "/v2/_catalog?n=4"
	for url != "" {
		resp := c.do("GET", url, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var p struct {
			Repositories []string `json:"repositories"`
		}
		require.NoError(t, json.Unmarshal(body(t, resp), &p))
		all = append(all, p.Repositories...)
		url = ""
		if link := resp.Header.Get("Link"); link != "" {
			assert.Equal(t, `</v2/_catalog?last=a-b&n=4>; rel="next"`, link)
			url = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	assert.Equal(t, want, all)
	resp := c.do("GET", "/v2/_catalog", nil)
	assert.JSONEq(t, `{"repositories":["a/0","a","a/c","a-b","a.b","b"]}`, string(body(t, resp)))
}

func TestStoreInspectableWhileServing(t *testing.T) {
	s, h := server.NewMemory(server.Options{})
	c := newClient(t, h)
	// Written beside the handler, served by it at once.
	repo, err := s.Repository("side")
	require.NoError(t, err)
	b, err := repo.PutBlob(strings.NewReader("beside"), "", -1)
	require.NoError(t, err)
	resp := c.do("GET", "/v2/side/blobs/"+b.Digest().String(), nil)
	assert.Equal(t, "beside", string(body(t, resp)))
	assert.Same(t, s, h.Store())
}

// hookFS is a MemFS that calls onCommit after each file it publishes.
type hookFS struct {
	*regstore.MemFS
	onCommit func(name string)
}

func (h *hookFS) Create(name string) (regstore.FileWriter, error) {
	w, err := h.MemFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &hookWriter{FileWriter: w, name: name, fs: h}, nil
}

type hookWriter struct {
	regstore.FileWriter
	name string
	fs   *hookFS
}

func (w *hookWriter) Commit() error {
	err := w.FileWriter.Commit()
	if err == nil && w.fs.onCommit != nil {
		w.fs.onCommit(w.name)
	}
	return err
}

// A collector in another process may unlink a blob between a manifest
// push's check and its publication: the handler looks again and links it
// back, or reports the blob unknown when its data is gone too.
func TestManifestPushRechecksReferences(t *testing.T) {
	for _, dataGone := range []bool{false, true} {
		t.Run(fmt.Sprintf("data gone %v", dataGone), func(t *testing.T) {
			hfs := &hookFS{MemFS: regstore.NewMemFS()}
			s, err := regstore.Open(hfs)
			require.NoError(t, err)
			c := newClient(t, server.New(s, server.Options{}))
			img := newImage(t, "1", nil, "")
			c.pushBlob("a", img.config)
			ld := c.pushBlob("a", img.layer)
			l := s.Layout()
			hfs.onCommit = func(name string) {
				if name != l.RevisionLink("a", img.digest) {
					return
				}
				hfs.onCommit = nil
				require.NoError(t, hfs.Remove(l.LayerLink("a", ld)))
				if dataGone {
					require.NoError(t, hfs.Remove(l.BlobData(ld)))
				}
			}
			resp := c.do("PUT", "/v2/a/manifests/v1", img.manifest, "Content-Type", v1.MediaTypeImageManifest)
			if dataGone {
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
				assert.Equal(t, "MANIFEST_BLOB_UNKNOWN", errorCode(t, resp))
				// The client pushes the blob again: the image pulls whole.
				assert.Equal(t, http.StatusNotFound, c.do("HEAD", "/v2/a/blobs/"+ld.String(), nil).StatusCode)
				c.pushBlob("a", img.layer)
			} else {
				assert.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body(t, resp))
			}
			got := c.do("GET", "/v2/a/blobs/"+ld.String(), nil)
			assert.Equal(t, http.StatusOK, got.StatusCode)
			assert.Equal(t, img.layer, body(t, got))
		})
	}
}

package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	regserver "github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeOnS3 pushes through the server package's handler onto S3:
// a chunked upload (each chunk its own object below the session), a
// monolithic one, a cancelled one, then pulls with ranges.
func TestServeOnS3(t *testing.T) {
	f := newFS(t, uniqueRoot("serve"))
	s, err := regstore.Open(f)
	require.NoError(t, err)
	srv := httptest.NewServer(regserver.New(s, regserver.Options{}))
	defer srv.Close()
	do := func(method, url string, body []byte, header ...string) *http.Response {
		t.Helper()
		if strings.HasPrefix(url, "/") {
			url = srv.URL + url
		}
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}

	big := randomBytes(7, 12<<20+123)
	d := digest.FromBytes(big)
	resp := do("POST", "/v2/team/app/blobs/uploads/", nil)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc, id := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
	chunk := 5 << 20
	for off := 0; off < len(big); off += chunk {
		end := min(off+chunk, len(big))
		resp = do("PATCH", loc, big[off:end], "Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "chunk at %d", off)
		loc = resp.Header.Get("Location")
	}
	sessionKeys := keys(t, bucket, f.Root()+"/docker/registry/v2/repositories/team/app/_uploads/"+id+"/")
	assert.Len(t, sessionKeys, 4, "startedat, data and two parts: %v", sessionKeys)
	resp = do("PUT", loc+"?digest="+d.String(), nil)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Empty(t, keys(t, bucket, f.Root()+"/docker/registry/v2/repositories/team/app/_uploads/"+id+"/"), "session removed")
	repo, err := s.Repository("team/app")
	require.NoError(t, err)
	b, err := repo.Blob(d)
	require.NoError(t, err)
	require.NoError(t, b.Verify())

	resp = do("GET", "/v2/team/app/blobs/"+d.String(), nil, "Range", "bytes=10000000-")
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.True(t, bytes.Equal(big[10000000:], got), "open-ended range")

	small := []byte("monolithic on S3")
	sd := digest.FromBytes(small)
	resp = do("POST", "/v2/team/app/blobs/uploads/?digest="+sd.String(), small)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)

	resp = do("POST", "/v2/team/app/blobs/uploads/", nil)
	resp.Body.Close()
	loc, id = resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
	resp = do("PATCH", loc, small)
	resp.Body.Close()
	resp = do("DELETE", loc, nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, keys(t, bucket, f.Root()+"/docker/registry/v2/repositories/team/app/_uploads/"+id+"/"), "cancelled session removed")
}

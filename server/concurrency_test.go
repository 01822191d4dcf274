package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collectGarbage runs one garbage collection of s, with h's publishing
// writes paused. It is the one place this package's tests call the
// collector.
func collectGarbage(ctx context.Context, h *server.Handler, s *regstore.Store, opts gc.Options) (removed int, err error) {
	err = h.Exclusive(func() error {
		plan, err := gc.Mark(ctx, s, opts)
		if err != nil {
			return err
		}
		res, err := gc.Sweep(ctx, s, plan, opts)
		if res != nil {
			removed = len(res.Blobs)
		}
		return err
	})
	return removed, err
}

// TestConcurrentPushPullGC has pushers and pullers work on the same blobs
// and tags through the handler while garbage collection (with
// --delete-untagged and a short grace window) runs beside them. A pull is
// broken when a tag's manifest cannot be pulled whole while the tag still
// points at it; there must be none. REGSTORE_SERVE_STRESS sets the
// duration (default 4s).
func TestConcurrentPushPullGC(t *testing.T) {
	duration := 4 * time.Second
	if v := os.Getenv("REGSTORE_SERVE_STRESS"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err)
		duration = d
	}
	const grace = 1500 * time.Millisecond
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			h := server.New(s, server.Options{})
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := &stressClient{base: srv.URL, http: srv.Client()}

			pool := make([][]byte, 6)
			for i := range pool {
				pool[i] = bytes.Repeat([]byte(fmt.Sprintf("shared blob %d ", i)), 4000+i*3000)
			}
			repos := []string{"stress/a", "stress/b"}
			tags := []string{"t0", "t1", "t2"}
			ctx, cancel := context.WithTimeout(context.Background(), duration)
			defer cancel()

			var (
				wg                            sync.WaitGroup
				pushes, pulls, broken, failed atomic.Int64
				expired                       atomic.Int64
				gcRounds, gcRemoved           atomic.Int64
				mu                            sync.Mutex
				problems                      []string
			)
			report := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(problems) < 20 {
					problems = append(problems, fmt.Sprintf(format, args...))
				}
			}
			for p := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(p), 1))
					for round := 0; ctx.Err() == nil; round++ {
						repo := repos[rng.IntN(len(repos))]
						if round%4 == 3 {
							// Garbage: a blob nothing will reference, and
							// an abandoned upload session.
							if err := c.upload(repo, []byte(fmt.Sprintf("orphan %d %d", p, round)), 0); err != nil {
								report("orphan upload: %v", err)
							}
							_, _ = c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
							continue
						}
						layers := [][]byte{pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))]}
						config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","pusher":%d,"round":%d}`, p, round))
						start := time.Now()
						if err := c.pushImage(repo, tags[rng.IntN(len(tags))], config, layers, round, repos); err != nil {
							if errors.Is(err, errBlobUnknown) && time.Since(start) > grace {
								// Its blobs outlived the grace window before
								// the manifest came (a loaded machine): the
								// collector may take them, as the
								// registry's would. A client pushes again.
								expired.Add(1)
								continue
							}
							failed.Add(1)
							report("push: %v", err)
							continue
						}
						pushes.Add(1)
					}
				})
			}
			for p := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(p), 2))
					for ctx.Err() == nil {
						repo, tag := repos[rng.IntN(len(repos))], tags[rng.IntN(len(tags))]
						ok, err := c.pull(repo, tag)
						if !ok {
							continue // not pushed yet
						}
						pulls.Add(1)
						if err != nil {
							// Broken only if the tag still names what
							// failed to pull.
							if d, derr := c.resolve(repo, tag); derr == nil && d == err.manifest {
								broken.Add(1)
								report("broken pull %s:%s: %v", repo, tag, err)
							}
						}
					}
				})
			}
			wg.Go(func() {
				for ctx.Err() == nil {
					n, err := collectGarbage(context.Background(), h, s, gc.Options{
						DeleteUntagged: true, Grace: grace})
					if err != nil {
						report("gc: %v", err)
					}
					gcRounds.Add(1)
					gcRemoved.Add(int64(n))
					time.Sleep(20 * time.Millisecond)
				}
			})
			wg.Wait()
			t.Logf("%s: %d pushes (%d failed, %d outlived the grace window), %d pulls, %d broken, %d GC rounds removed %d blobs",
				name, pushes.Load(), failed.Load(), expired.Load(), pulls.Load(), broken.Load(), gcRounds.Load(), gcRemoved.Load())
			assert.Empty(t, problems)
			assert.Zero(t, broken.Load(), "broken pulls")
			assert.Zero(t, failed.Load(), "failed pushes")
			assert.Positive(t, pushes.Load())
			assert.Positive(t, pulls.Load())
			assert.Positive(t, gcRemoved.Load(), "the collections removed nothing: the test proves nothing")

			// Afterwards every tag pulls whole.
			for _, repo := range repos {
				for _, tag := range tags {
					if ok, err := c.pull(repo, tag); ok {
						assert.Nil(t, err, "%s:%s", repo, tag)
					}
				}
			}
		})
	}
}

// errBlobUnknown marks a manifest push refused for a missing blob.
var errBlobUnknown = errors.New("manifest blob unknown")

type stressClient struct {
	base string
	http *http.Client
}

func (c *stressClient) do(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	url := path
	if path[0] == '/' {
		url = c.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		panic(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &http.Response{StatusCode: 0, Status: err.Error(), Header: http.Header{}}, nil
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// upload pushes content by one of the API's ways, chosen by how.
func (c *stressClient) upload(repo string, content []byte, how int) error {
	d := digest.FromBytes(content)
	switch how % 3 {
	case 0: // monolithic POST
		resp, b := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content, nil)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s: %s %s", d, resp.Status, b)
		}
		return nil
	case 1: // POST, then PUT with the body
		resp, b := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST: %s %s", resp.Status, b)
		}
		resp, b = c.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), content, nil)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT %s: %s %s", d, resp.Status, b)
		}
		return nil
	default: // two chunks, then an empty PUT
		resp, b := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST: %s %s", resp.Status, b)
		}
		loc, half := resp.Header.Get("Location"), len(content)/2
		for _, r := range [][2]int{{0, half}, {half, len(content)}} {
			resp, b = c.do("PATCH", loc, content[r[0]:r[1]], map[string]string{
				"Content-Range": strconv.Itoa(r[0]) + "-" + strconv.Itoa(r[1]-1)})
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("PATCH %s: %s %s", d, resp.Status, b)
			}
			loc = resp.Header.Get("Location")
		}
		resp, b = c.do("PUT", loc+"?digest="+d.String(), nil, nil)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT %s: %s %s", d, resp.Status, b)
		}
		return nil
	}
}

// pushImage pushes config and layers (or mounts a layer from the other
// repository) and then the manifest, tagged.
func (c *stressClient) pushImage(repo, tag string, config []byte, layers [][]byte, round int, repos []string) error {
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
	}
	if err := c.upload(repo, config, round); err != nil {
		return err
	}
	for i, l := range layers {
		d := digest.FromBytes(l)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: d, Size: int64(len(l))})
		if (round+i)%5 == 0 {
			other := repos[0]
			if other == repo {
				other = repos[1]
			}
			resp, _ := c.do("POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from="+other, nil, nil)
			if resp.StatusCode == http.StatusCreated {
				continue
			}
			// Not there: upload it in the session the POST opened.
			resp, b := c.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), l, nil)
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("PUT after failed mount %s: %s %s", d, resp.Status, b)
			}
			continue
		}
		if err := c.upload(repo, l, round+i); err != nil {
			return err
		}
	}
	raw, _ := json.Marshal(m)
	resp, b := c.do("PUT", "/v2/"+repo+"/manifests/"+tag, raw, map[string]string{"Content-Type": v1.MediaTypeImageManifest})
	if resp.StatusCode != http.StatusCreated {
		err := fmt.Errorf("PUT manifest %s:%s: %s %s", repo, tag, resp.Status, b)
		if bytes.Contains(b, []byte(`"MANIFEST_BLOB_UNKNOWN"`)) {
			err = fmt.Errorf("%w: %w", errBlobUnknown, err)
		}
		return err
	}
	return nil
}

func (c *stressClient) resolve(repo, tag string) (digest.Digest, error) {
	resp, b := c.do("HEAD", "/v2/"+repo+"/manifests/"+tag, nil, map[string]string{"Accept": ociAccept})
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HEAD %s:%s: %s %s", repo, tag, resp.Status, b)
	}
	return digest.Digest(resp.Header.Get("Docker-Content-Digest")), nil
}

// pullError is a failed pull of a manifest.
type pullError struct {
	manifest digest.Digest
	err      error
}

func (e *pullError) Error() string { return fmt.Sprintf("%s: %v", e.manifest, e.err) }

// pull pulls tag whole, verifying every digest. ok is false when the tag
// does not exist (yet).
func (c *stressClient) pull(repo, tag string) (ok bool, perr *pullError) {
	resp, raw := c.do("GET", "/v2/"+repo+"/manifests/"+tag, nil, map[string]string{"Accept": ociAccept})
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	md := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if resp.StatusCode != http.StatusOK {
		return true, &pullError{md, fmt.Errorf("GET manifest: %s %s", resp.Status, raw)}
	}
	if digest.FromBytes(raw) != md {
		return true, &pullError{md, fmt.Errorf("manifest does not match its digest")}
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return true, &pullError{md, err}
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		resp, b := c.do("GET", "/v2/"+repo+"/blobs/"+d.Digest.String(), nil, nil)
		if resp.StatusCode != http.StatusOK {
			return true, &pullError{md, fmt.Errorf("GET blob %s: %s %s", d.Digest, resp.Status, b)}
		}
		if digest.FromBytes(b) != d.Digest {
			return true, &pullError{md, fmt.Errorf("blob %s: content does not match", d.Digest)}
		}
	}
	return true, nil
}

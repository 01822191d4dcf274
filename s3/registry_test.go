package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The real-registry tests drive distribution v3.1.2 (`registry`) with its
// s3 driver pointed at the test server, and crane v0.22.1 as the client.
const (
	registryHint = "go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
	craneHint    = "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1"
)

// peer finds a peer binary: locally a missing one skips the test, under
// CI=true it fails it.
func peer(t testing.TB, name, hint string) string {
	t.Helper()
	needServer(t)
	p := findBinary(name)
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found; install it with: %s", name, hint)
		}
		t.Skipf("%s not found; install it with: %s", name, hint)
	}
	return p
}

// registryS3Config is the registry's config for the s3 driver on endpoint,
// with the tree under rootdir in the test bucket.
func registryS3Config(t testing.TB, endpoint, rootdir, addr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  s3: {region: %s, regionendpoint: %q, forcepathstyle: true, bucket: %s, accesskey: %s, secretkey: %s, rootdirectory: %q, secure: false}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: %q}
`, region, endpoint, bucket, accessKey, secretKey, rootdir, addr)
	p := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

// registryFSConfig is the registry's config for the filesystem driver.
func registryFSConfig(t testing.TB, rootdir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:0"}
`, rootdir)
	p := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

func registryEnv() []string { return append(os.Environ(), "OTEL_TRACES_EXPORTER=none") }

// startRegistry serves the tree under rootdir in the test bucket on a free
// loopback port and returns its host:port; it is stopped (by its pid) when
// the test ends.
func startRegistry(t testing.TB, rootdir string) string {
	t.Helper()
	bin := peer(t, "registry", registryHint)
	port, err := freePort()
	require.NoError(t, err)
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "serve", registryS3Config(t, server.Endpoint, rootdir, host))
	cmd.Env = registryEnv()
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	detach(cmd)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		terminate(cmd)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			kill(cmd)
			<-exited
		}
		if t.Failed() {
			t.Logf("registry output:\n%s", out.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("registry exited before answering: %s\n%s", cmd.ProcessState, out.String())
		default:
		}
		if resp, err := client.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s within 15s\n%s", host, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// garbageCollect runs the registry's garbage-collect --dry-run on config
// and returns its stdout and the wall time.
func garbageCollect(t testing.TB, config string, deleteUntagged bool) (string, time.Duration) {
	t.Helper()
	bin := peer(t, "registry", registryHint)
	args := []string{"garbage-collect", "--dry-run"}
	if deleteUntagged {
		args = append(args, "--delete-untagged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, config)...)
	cmd.Env = registryEnv()
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	require.NoError(t, err, "registry %s\nstdout (tail): %s\nstderr: %s", strings.Join(args, " "), tail(so.String(), 2000), se.String())
	return so.String(), elapsed
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// crane runs crane with args (and --insecure) and returns its stdout.
func crane(t testing.TB, args ...string) string {
	t.Helper()
	bin := peer(t, "crane", craneHint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--insecure")...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	require.NoError(t, cmd.Run(), "crane %s\n%s", strings.Join(args, " "), se.String())
	return so.String()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countingProxy is a loopback reverse proxy in front of the S3 server that
// counts the requests through it by kind ("GET object", "HEAD object",
// "LIST", "PUT object", ...). SigV4 signs the Host header, which the proxy
// passes on unchanged.
type countingProxy struct {
	Endpoint string
	mu       sync.Mutex
	counts   map[string]int64
	srv      *http.Server
}

func startCountingProxy(t testing.TB) *countingProxy {
	t.Helper()
	target, err := url.Parse(server.Endpoint)
	require.NoError(t, err)
	p := &countingProxy{counts: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.Endpoint = "http://" + l.Addr().String()
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[requestKind(r)]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// requestKind classifies a path-style S3 request.
func requestKind(r *http.Request) string {
	q := r.URL.Query()
	object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 // /bucket/key
	switch {
	case r.Method == http.MethodGet && !object && (q.Has("list-type") || q.Has("prefix") || q.Has("delimiter")):
		return "LIST"
	case r.Method == http.MethodPost && q.Has("delete"):
		return "DELETE multiple"
	case q.Has("uploadId") || q.Has("uploads"):
		return r.Method + " multipart"
	case object:
		return r.Method + " object"
	}
	return r.Method + " bucket"
}

func (p *countingProxy) Snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

func (p *countingProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.counts)
}

func total(m map[string]int64) int64 {
	var n int64
	for _, c := range m {
		n += c
	}
	return n
}

func formatCounts(m map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	fmt.Fprintf(&b, "(total %d)", total(m))
	return b.String()
}

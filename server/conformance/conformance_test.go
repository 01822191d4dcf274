package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const suiteModule = "github.com/opencontainers/distribution-spec/conformance"

var (
	suiteOnce sync.Once
	suiteBin  string
	suiteErr  error
)

// suite builds the conformance suite at the version go.mod pins, from the
// module cache (with the suite's own go.sum), once per test binary.
func suite(t *testing.T) string {
	t.Helper()
	suiteOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", suiteModule).Output()
		if err != nil {
			suiteErr = fmt.Errorf("go list -m %s: %w", suiteModule, err)
			return
		}
		version := strings.TrimSpace(string(out))
		out, err = exec.Command("go", "mod", "download", "-json", suiteModule+"@"+version).Output()
		if err != nil {
			suiteErr = fmt.Errorf("go mod download %s@%s: %w", suiteModule, version, err)
			return
		}
		var mod struct{ Dir string }
		if suiteErr = json.Unmarshal(out, &mod); suiteErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "oci-conformance-")
		if err != nil {
			suiteErr = err
			return
		}
		suiteBin = filepath.Join(dir, "oci-conformance")
		cmd := exec.Command("go", "build", "-o", suiteBin, ".")
		cmd.Dir = mod.Dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			suiteErr = fmt.Errorf("go build %s@%s: %w\n%s", suiteModule, version, err, out)
		}
	})
	require.NoError(t, suiteErr)
	return suiteBin
}

// result is what one run of the suite reported.
type result struct {
	Tests, Failures, Skipped int
	Failed                   []string // names of the failed tests
	Output                   string
}

// allOn turns on every API and data group: the defaults plus the ones
// the suite leaves off by default, except sparse manifests (see
// TestHandler).
var allOn = []string{
	"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	"OCI_API_MANIFESTS_TAG_PARAM=true",
	"OCI_API_BLOBS_DELETE=true",
	"OCI_API_MANIFESTS_DELETE=true",
	"OCI_API_TAGS_DELETE=true",
	"OCI_API_REFERRER=true",
}

var failedLine = regexp.MustCompile(`msg="failed test" name="([^"]*)"`)

// run runs the suite against addr with env added, and reads its verdicts:
// from junit.xml when it is written, else (a read-only run, whose results
// writer may panic) from the summary on its output.
func run(t *testing.T, addr string, env ...string) result {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OCI_REGISTRY="+addr, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_RESULTS_DIR="+dir, "OCI_LOG=warn")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exit status 1 on any failure; the counts say more
	res := result{Output: out.String()}
	seen := map[string]bool{}
	for _, m := range failedLine.FindAllStringSubmatch(res.Output, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			res.Failed = append(res.Failed, m[1])
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "junit.xml")); err == nil {
		var j struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
		}
		require.NoError(t, xml.Unmarshal(b, &j))
		res.Tests, res.Failures, res.Skipped = j.Tests, j.Failures, j.Skipped
		return res
	}
	res.Tests = summaryCount(t, res.Output, "Total")
	res.Failures = summaryCount(t, res.Output, "FAIL")
	res.Skipped = summaryCount(t, res.Output, "Skip")
	return res
}

// summaryCount reads "  <label>.....:   N" from the suite's report.
func summaryCount(t *testing.T, out, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + label + `\.+:\s+(\d+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no %q count in the suite's output:\n%s", label, tail(out))
	n, _ := strconv.Atoi(m[1])
	return n
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// listen serves h on a loopback port.
func listen(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestHandler runs the whole suite, every group on, against the handler
// over an in-memory store with deletes enabled: no test may fail.
//
// Sparse manifests (the suite's OCI_DATA_SPARSE, off by default) stay
// off: like the registry, the handler refuses a manifest whose blobs or
// children were not pushed (MANIFEST_BLOB_UNKNOWN), which the
// specification allows and the suite counts as failures.
func TestHandler(t *testing.T) {
	_, h := server.NewMemory(server.Options{}.AllDeletes())
	res := run(t, listen(t, h), allOn...)
	t.Logf("handler: %d tests, %d failures, %d skipped", res.Tests, res.Failures, res.Skipped)
	fmt.Printf("conformance against the handler: %d tests, %d failures, %d skipped\n", res.Tests, res.Failures, res.Skipped)
	assert.Greater(t, res.Tests, 800, "too few tests ran:\n%s", tail(res.Output))
	assert.Zero(t, res.Failures, "failed: %v\n%s", res.Failed, tail(res.Output))
	assert.Empty(t, res.Failed)
}

// TestHandlerReadOnly runs the suite's read-only mode against a
// read-only handler serving an image, an index and a referrer written
// with the store's API.
func TestHandlerReadOnly(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	repo, err := s.Repository("conformance/ro")
	require.NoError(t, err)
	put := func(b []byte) v1.Descriptor {
		blob, err := repo.PutBlob(bytes.NewReader(b), "", -1)
		require.NoError(t, err)
		return blob.Descriptor()
	}
	config := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	config.MediaType = v1.MediaTypeImageConfig
	layer := put([]byte("layer content"))
	layer.MediaType = v1.MediaTypeImageLayerGzip
	manifest := func(m v1.Manifest, tags ...string) *regstore.Manifest {
		m.SchemaVersion, m.MediaType = 2, v1.MediaTypeImageManifest
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		pm, err := repo.PutManifest(v1.MediaTypeImageManifest, raw, tags...)
		require.NoError(t, err)
		return pm
	}
	img := manifest(v1.Manifest{Config: config, Layers: []v1.Descriptor{layer}}, "v1")
	empty := put([]byte("{}"))
	empty.MediaType = v1.MediaTypeEmptyJSON
	subject := img.Descriptor()
	manifest(v1.Manifest{ArtifactType: "application/vnd.example.sig", Config: empty,
		Layers: []v1.Descriptor{empty}, Subject: &subject})

	h := server.New(s, server.Options{ReadOnly: true})
	res := run(t, listen(t, h),
		"OCI_API_PUSH=false", "OCI_REPO1=conformance/ro", "OCI_REPO2=conformance/ro",
		"OCI_RO_DATA_TAGS=v1",
		"OCI_RO_DATA_MANIFESTS="+img.Digest().String(),
		"OCI_RO_DATA_BLOBS="+layer.Digest.String()+" "+config.Digest.String(),
		"OCI_RO_DATA_REFERRERS="+img.Digest().String())
	t.Logf("handler, read-only: %d tests, %d failures, %d skipped", res.Tests, res.Failures, res.Skipped)
	fmt.Printf("conformance against the read-only handler: %d tests, %d failures, %d skipped\n", res.Tests, res.Failures, res.Skipped)
	assert.Greater(t, res.Tests, 5, "too few tests ran:\n%s", tail(res.Output))
	assert.Zero(t, res.Failures, "failed: %v\n%s", res.Failed, tail(res.Output))
}

// TestRegistry runs the same suite against distribution v3.1.2, for
// comparison, and only records its counts: the registry has no referrers
// API, no OCI-Subject and no sha512, so it fails some.
func TestRegistry(t *testing.T) {
	bin := lookPath("registry")
	if bin == "" {
		t.Skip("distribution v3.1.2 is not installed: go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2")
	}
	addr := startRegistry(t, bin)
	res := run(t, addr, allOn...)
	t.Logf("registry v3: %d tests, %d failures, %d skipped", res.Tests, res.Failures, res.Skipped)
	fmt.Printf("conformance against distribution v3.1.2: %d tests, %d failures, %d skipped\n", res.Tests, res.Failures, res.Skipped)
	assert.Greater(t, res.Tests, 800, "too few tests ran:\n%s", tail(res.Output))
}

// lookPath finds a binary on PATH or in GOPATH/bin.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// startRegistry starts the registry on a loopback port with a filesystem
// store and deletes enabled, and stops it (by its PID) at the end.
func startRegistry(t *testing.T, bin string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: %s}
`, filepath.Join(dir, "root"), addr)), 0o644))
	cmd := exec.Command(bin, "serve", config)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's output and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Registry versions understood by startRegistry and garbageCollect.
const (
	V3  = "v3"   // distribution v3.1.2, binary "registry"
	V28 = "v2.8" // distribution 2.8.2 (Debian), binary "docker-registry"
)

// registryVersions lists the versions every registry-facing test runs against.
var registryVersions = []string{V3, V28}

// cmdTimeout bounds every external command.
const cmdTimeout = 60 * time.Second

// peer describes how to find and install one external binary.
type peer struct {
	name    string   // executable name
	dirs    []string // extra directories searched after $PATH ("$GOBIN" = go env GOPATH/bin)
	install string   // shell command that installs it
	version []string // args printing the version
	want    string   // substring the version output must contain ("" = any)
}

var peers = map[string]peer{
	"registry": {
		name: "registry", dirs: []string{"$GOBIN"},
		install: "go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2",
		version: []string{"--version"}, want: "distribution/v3 v3.1.2",
	},
	"docker-registry": {
		name: "docker-registry", dirs: []string{"/usr/bin"},
		install: "apt-get update && apt-get install -y docker-registry",
		version: []string{"--version"}, want: " 2.8.",
	},
	"crane": {
		name: "crane", dirs: []string{"$GOBIN"},
		install: "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1",
		version: []string{"version"},
	},
	"skopeo": {
		name: "skopeo", dirs: []string{"/usr/bin"},
		install: "apt-get update && apt-get install -y skopeo",
		version: []string{"--version"},
	},
	"umoci": {
		name: "umoci", dirs: []string{"/usr/bin"},
		install: "apt-get update && apt-get install -y umoci",
		version: []string{"--version"},
	},
}

type lookupResult struct {
	path, version, problem string
}

var (
	binMu    sync.Mutex
	binCache = map[string]lookupResult{}
	gobinDir string
	gobinOne sync.Once
)

func goBin() string {
	gobinOne.Do(func() {
		if gb := os.Getenv("GOBIN"); gb != "" {
			gobinDir = gb
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
		gp := strings.TrimSpace(string(out))
		if err != nil || gp == "" {
			home, _ := os.UserHomeDir()
			gp = filepath.Join(home, "go")
		}
		gobinDir = filepath.Join(strings.Split(gp, string(os.PathListSeparator))[0], "bin")
	})
	return gobinDir
}

func lookupPeer(name string) lookupResult {
	binMu.Lock()
	defer binMu.Unlock()
	if r, ok := binCache[name]; ok {
		return r
	}
	p, ok := peers[name]
	if !ok {
		panic("unknown peer " + name)
	}
	var r lookupResult
	dirs := make([]string, len(p.dirs))
	for i, d := range p.dirs {
		if d == "$GOBIN" {
			d = goBin()
		}
		dirs[i] = d
	}
	if lp, err := exec.LookPath(p.name); err == nil {
		r.path = lp
	} else {
		for _, d := range dirs {
			c := filepath.Join(d, p.name)
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				r.path = c
				break
			}
		}
	}
	if r.path == "" {
		r.problem = fmt.Sprintf("%s not found in $PATH or %s; install it with: %s", p.name, strings.Join(dirs, ", "), p.install)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, r.path, p.version...).CombinedOutput()
		cancel()
		r.version = strings.TrimSpace(string(out))
		switch {
		case err != nil:
			r.problem = fmt.Sprintf("%s %v failed: %v: %s; reinstall with: %s", r.path, p.version, err, out, p.install)
		case p.want != "" && !strings.Contains(r.version, p.want):
			r.problem = fmt.Sprintf("%s reports version %q, want %q; install it with: %s", r.path, r.version, p.want, p.install)
		}
	}
	binCache[name] = r
	return r
}

// requireBinary returns the path of a peer binary ("registry",
// "docker-registry", "crane", "skopeo" or "umoci"). When it is missing (or
// has the wrong version) the test is skipped with the install command, or
// fails when $CI is "true".
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	r := lookupPeer(name)
	if r.problem != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("peer missing: %s", r.problem)
		}
		t.Skipf("peer missing: %s", r.problem)
	}
	return r.path
}

// registryBinary maps a version (V3, V28) to its binary.
func registryBinary(t testing.TB, version string) string {
	t.Helper()
	switch version {
	case V3:
		return requireBinary(t, "registry")
	case V28:
		return requireBinary(t, "docker-registry")
	}
	t.Fatalf("unknown registry version %q (want %q or %q)", version, V3, V28)
	return ""
}

func registryEnv(version string) []string {
	env := os.Environ()
	if version == V3 {
		env = append(env, "OTEL_TRACES_EXPORTER=none")
	}
	return env
}

// RegistryOptions tunes startRegistry.
type RegistryOptions struct {
	// ReadOnly sets storage.maintenance.readonly.enabled: the registry
	// serves the tree without writing to it (pushes and deletes fail).
	ReadOnly bool
	// Cache is storage.cache.blobdescriptor ("", "inmemory", "redis").
	Cache string
	// Extra is YAML appended at the top level (a redis section).
	Extra string
	// User, if set, runs the registry as that user (runuser -u USER).
	User string
}

// registryConfig renders the config YAML shared by serve and garbage-collect.
func registryConfig(rootdir, addr string, opts RegistryOptions) string {
	if opts.Cache != "" {
		return fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
  cache: {blobdescriptor: %s}
http: {addr: %q}
%s`, rootdir, opts.Cache, addr, opts.Extra)
	}
	maint := "{uploadpurging: {enabled: false}}"
	if opts.ReadOnly {
		maint = "{uploadpurging: {enabled: false}, readonly: {enabled: true}}"
	}
	return fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance: %s
http: {addr: %q}
`, rootdir, maint, addr)
}

func writeRegistryConfig(t testing.TB, rootdir, addr string, opts RegistryOptions) string {
	t.Helper()
	abs, err := filepath.Abs(rootdir)
	require.NoError(t, err)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(registryConfig(abs, addr, opts)), 0o644))
	if opts.User != "" { // the service user reads it
		require.NoError(t, os.Chmod(filepath.Dir(cfg), 0o755))
		require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(cfg)), 0o755))
	}
	return cfg
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
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

// Registry is a running (or stopped) registry process serving a filesystem
// rootdirectory on 127.0.0.1.
type Registry struct {
	Version string // V3 or V28
	Root    string // the storage rootdirectory (holds docker/registry/v2)
	Host    string // "127.0.0.1:PORT", stable across Restart
	Config  string // path of the config file
	Opts    RegistryOptions

	bin    string
	output *lockedBuffer // stdout+stderr of every run, in order

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	runs   int
}

// startRegistry starts registry version ("v3" or "v2.8") on rootdir, waits
// until GET /v2/ answers and registers a cleanup that stops it. The
// rootdir is created if missing.
func startRegistry(t testing.TB, version, rootdir string, opts RegistryOptions) *Registry {
	t.Helper()
	bin := registryBinary(t, version)
	if opts.User != "" {
		bin = userReadableCopy(t, bin)
	}
	require.NoError(t, os.MkdirAll(rootdir, 0o755))
	abs, err := filepath.Abs(rootdir)
	require.NoError(t, err)
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	r := &Registry{
		Version: version, Root: abs, Host: host, Opts: opts,
		Config: writeRegistryConfig(t, abs, host, opts),
		bin:    bin, output: &lockedBuffer{},
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			r.logOutput(t)
		}
	})
	r.start(t)
	return r
}

func (r *Registry) logOutput(t testing.TB) {
	out := r.output.String()
	const max = 16 << 10
	if len(out) > max {
		out = "...\n" + out[len(out)-max:]
	}
	t.Logf("registry %s (%s) output:\n%s", r.Version, r.Host, out)
}

func (r *Registry) start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		t.Fatalf("registry %s already running", r.Host)
	}
	r.runs++
	fmt.Fprintf(r.output, "=== start #%d: %s serve %s\n", r.runs, r.bin, r.Config)
	cmd := exec.Command(r.bin, "serve", r.Config)
	if r.Opts.User != "" {
		cmd = exec.Command("runuser", "-u", r.Opts.User, "--", r.bin, "serve", r.Config)
	}
	cmd.Env = registryEnv(r.Version)
	cmd.Stdout = r.output
	cmd.Stderr = r.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		t.Fatalf("start %s: %v", r.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			r.mu.Lock()
			r.cmd = nil
			r.mu.Unlock()
			r.logOutput(t)
			t.Fatalf("registry %s exited before answering on %s (%s)", r.Version, r.Host, cmd.ProcessState)
		default:
		}
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			r.Stop()
			r.logOutput(t)
			t.Fatalf("registry %s did not answer GET http://%s/v2/ within 15s: %v", r.Version, r.Host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the process is up.
func (r *Registry) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Stop stops the registry (SIGTERM, then SIGKILL after 10 s) and waits for
// it to exit. It is idempotent; after it returns the tree can be read.
func (r *Registry) Stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops the registry if it runs and starts it again on the same
// rootdir, config and port.
func (r *Registry) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	r.start(t)
}

// Ref returns "HOST/repo" + suffix, e.g. r.Ref("team/app:v1").
func (r *Registry) Ref(repoAndRef string) string { return r.Host + "/" + repoAndRef }

// runGarbageCollect runs `<registry> garbage-collect [--dry-run]
// [--delete-untagged] CONFIG` against rootdir with the same config shape as
// startRegistry. The registry serving rootdir must be stopped (or
// read-only). It returns stdout, stderr and the exit error.
func runGarbageCollect(t testing.TB, version, rootdir string, dryRun, deleteUntagged bool) (stdout, stderr string, err error) {
	t.Helper()
	bin := registryBinary(t, version)
	cfg := writeRegistryConfig(t, rootdir, "127.0.0.1:0", RegistryOptions{})
	args := []string{"garbage-collect"}
	if dryRun {
		args = append(args, "--dry-run")
	}
	if deleteUntagged {
		args = append(args, "--delete-untagged")
	}
	args = append(args, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = registryEnv(version)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return so.String(), se.String(), err
}

// garbageCollect is runGarbageCollect that fails the test on error and
// returns stdout (the mark/sweep report).
func garbageCollect(t testing.TB, version, rootdir string, dryRun, deleteUntagged bool) string {
	t.Helper()
	so, se, err := runGarbageCollect(t, version, rootdir, dryRun, deleteUntagged)
	require.NoError(t, err, "garbage-collect (%s, dry-run=%v, -m=%v) failed\nstdout:\n%s\nstderr:\n%s",
		version, dryRun, deleteUntagged, so, se)
	return so
}

// userReadableCopy copies the binary bin where any user can run it (the
// Go bin directory may be below a home only its owner enters).
func userReadableCopy(t testing.TB, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "regstore-bin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	dst := filepath.Join(dir, filepath.Base(bin))
	require.NoError(t, os.WriteFile(dst, data, 0o755))
	return dst
}

package interop

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runRegstore runs the CLI and returns stdout, stderr and the exit code.
func runRegstore(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), code
}

func startRedisServer(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	port := freePort(t)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	return addr
}

// uploads counts the blob uploads a crane push made (its "pushed blob"
// lines).
func craneUploads(out string) int { return strings.Count(out, "pushed blob") }

// TestLiveCacheCoherence: push a/b:1, delete it with regstore, collect,
// push the same image as a/b:2. With a redis cache regstore forgets what
// it removed, so the push uploads the blobs again and the image is whole.
// With an inmemory cache regstore refuses without --registry-restart-after;
// with it and a restart, the push works.
func TestLiveCacheCoherence(t *testing.T) {
	bin := buildRegstoreCLI(t)
	for _, version := range []string{V3, V28} {
		for _, cache := range []string{"redis", "inmemory"} {
			t.Run(version+"/"+cache, func(t *testing.T) {
				opts := RegistryOptions{Cache: cache}
				if cache == "redis" {
					addr := startRedisServer(t)
					opts.Extra = fmt.Sprintf("redis: {addrs: [%q]}\n", addr)
					if version == V28 {
						opts.Extra = fmt.Sprintf("redis: {addr: %q}\n", addr)
					}
				}
				r := startRegistry(t, version, t.TempDir(), opts)
				work := t.TempDir()
				layer := makeLayerTar(t, work, "l.tar", map[string]string{"f": "live " + version + cache})
				craneAppend(t, r.Ref("a/b:1"), true, layer)
				tarball := filepath.Join(work, "img.tar")
				mustTool(t, "crane", "pull", "--insecure", r.Ref("a/b:1"), tarball)

				_, errOut, code := runRegstore(t, bin, "rm", "--config", r.Config, "a/b:1")
				require.Equal(t, 0, code, errOut)
				gcArgs := []string{"gc", "--delete-untagged", "--grace", "-1s", "--config", r.Config}
				if cache == "inmemory" {
					out, errOut, code := runRegstore(t, bin, gcArgs...)
					assert.Equal(t, 2, code, "refused without the flag: %s", out)
					assert.Contains(t, errOut, "--registry-restart-after")
					gcArgs = append(gcArgs, "--registry-restart-after")
				}
				out, errOut, code := runRegstore(t, bin, gcArgs...)
				require.Equal(t, 0, code, errOut)
				assert.Contains(t, out, "removed 3 blobs", "manifest, config and layer")
				if cache == "inmemory" {
					r.Restart(t)
				}
				pushOut, all, err := runTool(t, requireBinary(t, "crane"), "push", "--insecure", tarball, r.Ref("a/b:2"))
				require.NoError(t, err, all)
				_ = pushOut
				assert.Equal(t, 2, craneUploads(all), "config and layer uploaded again:\n%s", all)
				craneValidate(t, r.Ref("a/b:2"))
				_, errOut, code = runRegstore(t, bin, "check", r.Root)
				assert.Equal(t, 0, code, errOut)
			})
		}
	}
}

// TestLiveOwnership: the registry runs as its service user; regstore, run
// as root, imports into a new repository; the registry then pushes into
// it (its _uploads, _layers) and into blob prefixes regstore made.
func TestLiveOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("docker-registry")
	if err != nil {
		t.Skip("no docker-registry user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	bin := buildRegstoreCLI(t)
	for _, version := range []string{V3, V28} {
		t.Run(version, func(t *testing.T) {
			base, err := os.MkdirTemp("", "regstore-own-")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(base) })
			require.NoError(t, os.Chmod(base, 0o755))
			root := filepath.Join(base, "data")
			require.NoError(t, os.Mkdir(root, 0o755))
			require.NoError(t, os.Chown(root, uid, gid))
			r := startRegistry(t, version, root, RegistryOptions{User: "docker-registry"})
			work := t.TempDir()
			craneAppend(t, r.Ref("a/b:1"), true, makeLayerTar(t, work, "l1.tar", map[string]string{"f": "one " + version}))

			// An image regstore imports as root: new repository, new blobs.
			src := t.TempDir()
			other := startRegistry(t, V3, t.TempDir(), RegistryOptions{})
			craneAppend(t, other.Ref("x/y:1"), true, makeLayerTar(t, work, "l2.tar", map[string]string{"g": "two " + version}))
			cranePullOCI(t, other.Ref("x/y:1"), src)
			_, errOut, code := runRegstore(t, bin, "import-oci", "--tag", "1", root, "x/y", src)
			require.Equal(t, 0, code, errOut)
			require.NoError(t, filepath.WalkDir(filepath.Join(root, "docker"), func(p string, e fs.DirEntry, err error) error {
				require.NoError(t, err)
				fi, err := os.Lstat(p)
				require.NoError(t, err)
				st := fi.Sys().(*syscall.Stat_t)
				assert.Equal(t, uint32(uid), st.Uid, "owner of %s", p)
				return nil
			}))
			// The registry pushes into the imported repository.
			craneAppend(t, r.Ref("x/y:2"), true, makeLayerTar(t, work, "l3.tar", map[string]string{"h": "three " + version}))
			craneValidate(t, r.Ref("x/y:2"))
			craneValidate(t, r.Ref("x/y:1"))
		})
	}
}

// TestLiveRefusesWrongRoot: /etc, an empty directory and the docker/
// folder are exit 2 with the explanation.
func TestLiveRefusesWrongRoot(t *testing.T) {
	bin := buildRegstoreCLI(t)
	r := startRegistry(t, V3, t.TempDir(), RegistryOptions{})
	craneAppend(t, r.Ref("a/b:1"), true, makeLayerTar(t, t.TempDir(), "l.tar", map[string]string{"f": "x"}))
	for root, want := range map[string]string{
		"/etc":                          "expected docker/registry/v2",
		t.TempDir():                     "found an empty directory",
		filepath.Join(r.Root, "docker"): "this looks like the registry's docker/ folder: give its parent",
	} {
		for _, cmd := range []string{"inspect", "check", "gc", "du"} {
			out, errOut, code := runRegstore(t, bin, cmd, root)
			assert.Equal(t, 2, code, "%s %s: %s", cmd, root, out)
			assert.Contains(t, errOut, want, "%s %s", cmd, root)
		}
	}
	// The config form gives the ROOT form's plan.
	byRoot, _, code := runRegstore(t, bin, "gc", "--dry-run", "--json", r.Root)
	require.Equal(t, 0, code)
	byConfig, _, code := runRegstore(t, bin, "gc", "--dry-run", "--json", "--config", r.Config)
	require.Equal(t, 0, code)
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, `"started"`) && !strings.Contains(l, `"cutoff"`) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	assert.Equal(t, strip(byRoot), strip(byConfig))
}

// TestLiveRegistryProcessSeen: without --config, regstore finds the
// registry process serving ROOT (its command line and config) and acts on
// what its config says.
func TestLiveRegistryProcessSeen(t *testing.T) {
	bin := buildRegstoreCLI(t)
	for _, version := range []string{V3, V28} {
		t.Run(version, func(t *testing.T) {
			r := startRegistry(t, version, t.TempDir(), RegistryOptions{Cache: "inmemory"})
			craneAppend(t, r.Ref("a/b:1"), true, makeLayerTar(t, t.TempDir(), "l.tar", map[string]string{"f": "seen " + version}))
			_, errOut, code := runRegstore(t, bin, "rm", r.Root, "a/b:1")
			require.Equal(t, 0, code, errOut)
			before := treeListing(t, r.Root)
			out, errOut, code := runRegstore(t, bin, "gc", "--delete-untagged", "--grace", "-1s", r.Root)
			assert.Equal(t, 2, code, out)
			r.mu.Lock()
			pid := r.cmd.Process.Pid
			r.mu.Unlock()
			assert.Contains(t, errOut, fmt.Sprintf("process %d (", pid))
			assert.Contains(t, errOut, "serve "+r.Config)
			assert.Contains(t, errOut, "keeps an inmemory blob-descriptor cache")
			assert.Equal(t, before, treeListing(t, r.Root), "nothing removed")
			// The v2 folder itself names the same tree.
			_, errOut, code = runRegstore(t, bin, "gc", "--grace", "-1s", filepath.Join(r.Root, "docker/registry/v2"))
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, "keeps an inmemory blob-descriptor cache")
			// Stopped, it is not seen.
			r.Stop()
			out, errOut, code = runRegstore(t, bin, "gc", "--delete-untagged", "--grace", "-1s", r.Root)
			assert.Equal(t, 0, code, errOut)
			assert.NotContains(t, errOut, "serves this tree")
			assert.Contains(t, out, "removed 3 blobs")
		})
	}
	t.Run("read-only, no cache", func(t *testing.T) {
		root := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(root, "docker/registry/v2"), 0o755))
		r := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
		_, errOut, code := runRegstore(t, bin, "gc", "--grace", "-1s", r.Root)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, errOut, "serves this tree in read-only maintenance mode")
	})
}

// treeListing lists every path below root.
func treeListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		out = append(out, p)
		return err
	}))
	return out
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, root, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(p, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n"+extra), 0o644))
	return p
}

func TestInmemoryCacheNeedsRestartFlag(t *testing.T) {
	tr := buildTree(t)
	runOK(t, "rm", tr.dir, "team/app:docker")
	cfg := writeConfig(t, tr.dir, "  cache:\n    blobdescriptor: inmemory\n")
	before := snapshot(t, tr.dir)
	for _, args := range [][]string{
		{"gc", "--grace", "-1s", "--config", cfg},
		{"rm", "--config", cfg, "team/app/web"},
	} {
		out, errOut, code := runCLI(t, args...)
		assert.Equal(t, 2, code, "%q: %s", args, errOut)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "keeps an inmemory blob-descriptor cache")
		assert.Contains(t, errOut, "restart it right after this command")
		assert.Contains(t, errOut, "--registry-restart-after")
	}
	assert.Equal(t, before, snapshot(t, tr.dir), "nothing removed without the flag")
	// Dry runs and read-only maintenance mode need nothing.
	assert.Contains(t, runOK(t, "gc", "--dry-run", "--grace", "-1s", "--config", cfg), "would remove 1 blob,")
	ro := writeConfig(t, tr.dir, "  cache:\n    blobdescriptor: inmemory\n  maintenance:\n    readonly:\n      enabled: true\n")
	assert.Contains(t, runOK(t, "gc", "--dry-run", "--grace", "-1s", "--config", ro), "would remove 1 blob,")
	out, errOut, code := runCLI(t, "gc", "--grace", "-1s", "--registry-restart-after", "--config", cfg)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "removed 1 blob,")
	assert.Contains(t, errOut, "restart the registry")
}

// startRedis starts redis-server on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	require.Eventually(t, func() bool { return c.Ping(context.Background()).Err() == nil }, 5*time.Second, 20*time.Millisecond)
	return addr
}

func TestRedisCacheEntriesRemoved(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	tr := buildTree(t)
	runOK(t, "rm", tr.dir, "team/app:docker")
	gone := tr.loose.Digest()
	kept := digest.FromBytes(tr.base.Compressed)
	// What the registry writes for a blob it has seen in a repository.
	seed := func(repo string, d fmt.Stringer) {
		require.NoError(t, c.HSet(ctx, "blobs::"+d.String(), "digest", d.String(), "size", 64, "mediatype", "x").Err())
		require.NoError(t, c.SAdd(ctx, "repository::"+repo+"::blobs", d.String()).Err())
		require.NoError(t, c.HSet(ctx, "repository::"+repo+"::blobs::"+d.String(), "mediatype", "x").Err())
	}
	seed("team/app", gone)
	seed("other/repo", gone)
	seed("team/app", kept)
	seed("team/app/web", kept)

	for i, shape := range []string{"redis:\n  addr: " + addr + "\n", "redis:\n  addrs: [" + addr + "]\n"} {
		cfg := writeConfig(t, tr.dir, "  cache:\n    blobdescriptor: redis\n"+shape)
		if i == 0 {
			out := runOK(t, "gc", "--grace", "-1s", "--config", cfg)
			assert.Contains(t, out, "removed 1 blob,")
			assert.Contains(t, out, gone.String())
			assert.Zero(t, c.Exists(ctx, "blobs::"+gone.String(), "repository::team/app::blobs::"+gone.String(), "repository::other/repo::blobs::"+gone.String()).Val())
			assert.False(t, c.SIsMember(ctx, "repository::team/app::blobs", gone.String()).Val())
			assert.False(t, c.SIsMember(ctx, "repository::other/repo::blobs", gone.String()).Val())
			assert.Equal(t, int64(3), c.Exists(ctx, "blobs::"+kept.String(), "repository::team/app::blobs::"+kept.String(), "repository::team/app/web::blobs::"+kept.String()).Val(), "what gc keeps stays cached")
			continue
		}
		// Deleting a repository forgets its blobs, not the others'.
		runOK(t, "rm", "--config", cfg, "team/app/web")
		assert.Zero(t, c.Exists(ctx, "repository::team/app/web::blobs", "repository::team/app/web::blobs::"+kept.String()).Val())
		assert.Equal(t, int64(2), c.Exists(ctx, "blobs::"+kept.String(), "repository::team/app::blobs::"+kept.String()).Val())
	}
	// An unreachable redis is an error before anything is removed.
	cfg := writeConfig(t, tr.dir, "  cache:\n    blobdescriptor: redis\nredis:\n  addrs: [127.0.0.1:1]\n")
	_, errOut, code := runCLI(t, "rm", "--config", cfg, "team/app")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "caches blob descriptors in redis, which regstore cannot reach")
	assert.DirExists(t, filepath.Join(tr.dir, "docker/registry/v2/repositories/team/app"))
}

func TestRegistryNotes(t *testing.T) {
	tr := buildTree(t)
	cfg := writeConfig(t, tr.dir, "proxy:\n  remoteurl: https://registry-1.docker.io\n")
	out, errOut, code := runCLI(t, "gc", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "removed 0 blobs", "inside the grace window")
	assert.Contains(t, errOut, "a registry (config "+cfg+") serves this tree: it may write while this runs")
	assert.Contains(t, errOut, "it keeps no blob-descriptor cache")
	assert.Contains(t, errOut, "pull-through cache of https://registry-1.docker.io")
	// Without --config and no registry process serving it: no note.
	out, errOut, code = runCLI(t, "gc", tr.dir)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut)
	assert.Contains(t, out, "removed 0 blobs")
}

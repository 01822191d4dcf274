package s3_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regstore/regstore/config"
	"github.com/regstore/regstore/gc"
	regs3 "github.com/regstore/regstore/s3"
)

// buildCLI builds the regstore command (its own module, with its
// workspace on this checkout).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "regstore")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = "../cmd/regstore"
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the command:\n%s", out)
	return bin
}

// TestOpenConfigRegistryTree: the registry's own s3 config opens the tree
// its s3 driver wrote, and "regstore gc --config" plans on it what the
// library plans, then collects while the registry keeps serving.
func TestOpenConfigRegistryTree(t *testing.T) {
	peer(t, "registry", registryHint)
	peer(t, "crane", craneHint)
	for _, root := range []string{uniqueRoot("cfg"), "//" + uniqueRoot("cfg-slashes") + "/"} {
		host := startRegistry(t, root)
		crane(t, "append", "-f", layerTar(t, map[string]string{"a.txt": "kept " + root}), "-t", host+"/team/app:keep", "--oci-empty-base")
		crane(t, "append", "-f", layerTar(t, map[string]string{"b.txt": "dropped " + root}), "-t", host+"/team/app:drop", "--oci-empty-base")
		cfgPath := registryS3Config(t, server.Endpoint, root, "127.0.0.1:0")
		c, err := config.Load(cfgPath)
		require.NoError(t, err)
		s, f, err := regs3.OpenConfig(context.Background(), c.Storage.S3)
		require.NoError(t, err)
		assert.Equal(t, c.Storage.S3.Prefix(), f.Key(s.Layout().Root()), "keys as the driver makes them")

		bin := buildCLI(t)
		run := func(args ...string) string {
			out, err := exec.Command(bin, args...).Output()
			var ee *exec.ExitError
			if err != nil && assert.ErrorAs(t, err, &ee) {
				t.Fatalf("regstore %q: %v\n%s", args, err, ee.Stderr)
			}
			return string(out)
		}
		run("rm", "--config", cfgPath, "team/app:drop")
		var got struct {
			Blobs []digest.Digest `json:"blobs"`
		}
		require.NoError(t, json.Unmarshal([]byte(run("gc", "--dry-run", "--delete-untagged", "--grace", "-1s", "--json", "--config", cfgPath)), &got))
		plan, err := gc.Mark(context.Background(), s, gc.Options{DeleteUntagged: true, Grace: -time.Second})
		require.NoError(t, err)
		assert.Len(t, got.Blobs, 3, "manifest, config and layer of the dropped tag")
		assert.Equal(t, plan.Blobs, got.Blobs, "the CLI's plan is the library's")

		assert.Contains(t, run("gc", "--delete-untagged", "--grace", "-1s", "--config", cfgPath), "removed 3 blobs")
		crane(t, "validate", "--remote", host+"/team/app:keep")
		assert.Contains(t, run("check", "--config", cfgPath), "no problems")
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefusesWhatIsNotATree(t *testing.T) {
	tr := buildTree(t)
	docker := filepath.Join(tr.dir, "docker")
	empty := t.TempDir()
	cases := []struct {
		root string
		want []string
	}{
		{"/etc", []string{"/etc is not a registry storage tree", "expected docker/registry/v2", "entries ("}},
		{empty, []string{"found an empty directory"}},
		{docker, []string{"this looks like the registry's docker/ folder: give its parent, " + tr.dir}},
		{filepath.Join(docker, "registry"), []string{"docker/registry folder"}},
	}
	for _, c := range cases {
		for _, args := range [][]string{
			{"inspect", c.root}, {"check", c.root}, {"gc", "--dry-run", c.root}, {"gc", c.root}, {"du", c.root},
			{"rm", c.root, "team/app:v1"}, {"purge-uploads", "--older-than", "1h", c.root},
			{"export-oci", c.root, "team/app", filepath.Join(t.TempDir(), "out")},
		} {
			out, errOut, code := runCLI(t, args...)
			assert.Equal(t, 2, code, "regstore %q: %s", args, errOut)
			assert.Empty(t, out, "regstore %q", args)
			for _, w := range c.want {
				assert.Contains(t, errOut, w, "regstore %q", args)
			}
		}
	}
	// Imports into /etc are refused too; into a missing or empty directory
	// they make a new tree.
	src := filepath.Join(t.TempDir(), "oci")
	runOK(t, "export-oci", tr.dir, "team/app", src)
	_, errOut, code := runCLI(t, "import-oci", "/etc", "x/y", src)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "is not a registry storage tree")
	for _, dst := range []string{empty, filepath.Join(t.TempDir(), "new")} {
		runOK(t, "import-oci", dst, "x/y", src)
		assert.DirExists(t, filepath.Join(dst, "docker/registry/v2/repositories/x/y"))
	}
	// The v2 folder itself is a tree.
	assert.Contains(t, runOK(t, "inspect", filepath.Join(docker, "registry/v2")), "team/app")
}

func TestConfigFlagFilesystem(t *testing.T) {
	tr := buildTree(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+tr.dir+"\n  delete: {enabled: true}\n"), 0o644))
	runOK(t, "rm", tr.dir, "team/app:docker")
	for _, args := range [][]string{
		{"gc", "--dry-run", "--delete-untagged", "--grace", "-1s", "--json"},
		{"inspect", "--json"},
		{"du", "--json"},
		{"check", "--json"},
	} {
		byRoot := runOK(t, append(args, tr.dir)...)
		byConfig := runOK(t, append(args, "--config", cfg)...)
		if args[0] == "gc" {
			// Only the start times differ.
			assert.Contains(t, byConfig, `"blobs": [`)
			assert.Equal(t, stripTimes(byRoot), stripTimes(byConfig), "%q", args)
			continue
		}
		assert.Equal(t, byRoot, byConfig, "%q", args)
	}
	// --config and ROOT together: ROOT is one argument too many.
	_, errOut, code := runCLI(t, "gc", "--config", cfg, tr.dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want exactly one ROOT")
	// An unsupported driver is named.
	require.NoError(t, os.WriteFile(cfg, []byte("version: 0.1\nstorage: {gcs: {bucket: b}}\n"), 0o644))
	_, errOut, code = runCLI(t, "gc", "--config", cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `storage driver "gcs": unsupported storage driver`)
	// The environment overrides the file, as in the registry.
	require.NoError(t, os.WriteFile(cfg, []byte("version: 0.1\nstorage: {filesystem: {rootdirectory: /nonexistent}}\n"), 0o644))
	cmd := execCommand("inspect", "--config", cfg)
	cmd.Env = append(os.Environ(), "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+tr.dir)
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(got), "team/app")
}

// stripTimes drops the lines of gc's JSON that hold times.
func stripTimes(s string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.Contains(line, `"started"`) && !strings.Contains(line, `"cutoff"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionFromBuildInfo(t *testing.T) {
	old := readBuildInfo
	t.Cleanup(func() { readBuildInfo = old })
	readBuildInfo = func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "github.com/regstore/regstore", Version: "v0.3.1"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-03T18:00:00Z"},
				{Key: "vcs.modified", Value: "true"}}}, true
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(context.Background(), args, &out, &errOut), args)
		assert.Equal(t, "regstore v0.3.1 (go1.99.1, linux/amd64)\nrevision 0123abcd, 2026-12-03T18:00:00Z, modified\n",
			strings.Replace(out.String(), buildVersion().Platform, "linux/amd64", 1), args)
	}
	var out bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"version", "--json"}, &out, &out))
	var v map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &v))
	assert.Equal(t, "v0.3.1", v["version"])
	assert.Equal(t, "0123abcd", v["revision"])
	assert.Equal(t, true, v["modified"])

	// No build info: still a line, and no revision.
	readBuildInfo = func() (*debug.BuildInfo, bool) { return nil, false }
	out.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"version"}, &out, &out))
	assert.Regexp(t, `^regstore \(unknown\) \(go[0-9.]+\S*, \S+/\S+\)\n$`, out.String())
}

// TestVersionInstalled asks the built command for its version, both ways.
func TestVersionInstalled(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	require.NoError(t, err)
	assert.Regexp(t, `^regstore \S+ \(go[0-9.]+\S*, \S+/\S+\)\n`, string(out))
	out2, err := exec.Command(binary, "--version").Output()
	require.NoError(t, err)
	assert.Equal(t, string(out), string(out2))
	_, err = os.Stat(filepath.Join("..", "..", "LICENSE"))
	assert.NoError(t, err, "LICENSE at the module root")
}

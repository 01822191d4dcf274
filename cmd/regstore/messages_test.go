package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRepairAllLeavesNothing: --repair all handles a temporary file an
// hour old and a link file that holds no digest; the dry run says what it
// would do, in those words.
func TestRepairAllLeavesNothing(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, regstoretest.TempFile(tr.root, "team/app", "v1"))
	require.NoError(t, regstoretest.GarbageLink(tr.root, "team/app", string(digest.FromBytes(tr.curLayer.Compressed))))
	link, err := regstoretest.LinkPath(tr.root, "team/app", "v1")
	require.NoError(t, err)
	tmp := filepath.Join(tr.dir, filepath.FromSlash(link+".0b9d8f4e-5c1a-4d7e-9a63-2f1e8c7b6a50.tmp"))
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(tmp, old, old))

	human, _, code := runCLI(t, "check", "--repair", "all", "--dry-run", tr.dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, human, "repairs (dry run, nothing changed):\n")
	for _, line := range strings.Split(human[strings.Index(human, "repairs (dry run"):], "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && f[0] != "skip" {
			assert.Equal(t, "would", f[1], "dry-run repair %q", line)
		}
	}
	assert.Contains(t, human, "remove-file would remove temporary file ")
	assert.Contains(t, human, "quarantine  would move the layer link ")
	assert.Contains(t, human, "write-link  would write the _layers link ")
	assert.FileExists(t, tmp, "the dry run removed nothing")

	got := runJSON(t, 0, "check", "--json", "--repair", "all", tr.dir)
	assert.ElementsMatch(t, []string{"temp-file", "link-unparsable", "reference-unlinked"}, kindsOf(t, got["problems"]))
	assert.Equal(t, []any{}, got["remaining"])
	assert.Equal(t, true, got["clean"])
	assert.NoFileExists(t, tmp)
	_, err = tr.repoApp.Blob(digest.FromBytes(tr.curLayer.Compressed))
	assert.NoError(t, err, "the layer is linked again")
}

// TestProblemPathOnce: a problem whose sentence names its path does not
// print it again.
func TestProblemPathOnce(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, regstoretest.TempFile(tr.root, "team/app", "v1"))
	out, _, code := runCLI(t, "check", "--links-only", tr.dir)
	assert.Equal(t, 1, code)
	link, err := regstoretest.LinkPath(tr.root, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, link+".0b9d"), out)
}

// TestDurationsInDays: --older-than and --grace take days and weeks, and a
// bad value says what is accepted.
func TestDurationsInDays(t *testing.T) {
	tr := buildTree(t)
	got := runJSON(t, 0, "purge-uploads", "--json", "--dry-run", "--older-than", "1d", tr.dir)
	assert.Equal(t, "24h0m0s", got["olderThan"])
	got = runJSON(t, 0, "purge-uploads", "--json", "--dry-run", "--older-than=2w", tr.dir)
	assert.Equal(t, "336h0m0s", got["olderThan"])
	got = runJSON(t, 0, "purge-uploads", "--json", "--dry-run", "--older-than", "1d12h", tr.dir)
	assert.Equal(t, "36h0m0s", got["olderThan"])
	runJSON(t, 0, "gc", "--json", "--dry-run", "--grace", "7d", tr.dir)

	for _, bad := range []string{"1x", "d", "1dd", "1.5.5d"} {
		out, errOut, code := runCLI(t, "purge-uploads", "--older-than", bad, tr.dir)
		assert.Equal(t, 2, code, bad)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "--older-than: ", bad)
		assert.Contains(t, errOut, "7d or 2w", bad)
		assert.NotContains(t, errOut, "parse error", bad)
	}
}

// TestFlagErrorsDoubleDash: flags are named in errors as they are written.
func TestFlagErrorsDoubleDash(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gc", "--nope", dir}, "regstore gc: flag provided but not defined: --nope\n"},
		{[]string{"gc", dir, "--grace"}, "regstore gc: flag needs an argument: --grace\n"},
		{[]string{"gc", "--workers", "x", dir}, `regstore gc: --workers: invalid value "x"` + "\n"},
		{[]string{"check", "--json=maybe", dir}, `regstore check: --json: invalid value "maybe" (want true or false)` + "\n"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, 2, code, c.args)
		assert.True(t, strings.HasPrefix(errOut, c.want), "%q: %s", c.args, errOut)
		assert.NotRegexp(t, `(^|\s)-[a-z]`, strings.SplitN(errOut, "\n", 2)[0], c.args)
	}
}

// TestGCJSONCutoffNull: with the grace window off, cutoff is null.
func TestGCJSONCutoffNull(t *testing.T) {
	tr := buildTree(t)
	got := runJSON(t, 0, "gc", "--json", "--dry-run", "--grace=-1s", tr.dir)
	assert.Contains(t, got, "cutoff")
	assert.Nil(t, got["cutoff"])
	assert.Equal(t, true, got["dryRun"])
	got = runJSON(t, 0, "gc", "--json", "--dry-run", tr.dir)
	cutoff, err := time.Parse(time.RFC3339, got["cutoff"].(string))
	require.NoError(t, err)
	started, err := time.Parse(time.RFC3339, got["started"].(string))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, started.Sub(cutoff).Round(time.Second))
	out := runOK(t, "gc", "--dry-run", "--grace=-1s", tr.dir)
	assert.Contains(t, out, "grace window: off\n")
}

package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runJSON runs the binary, requires exit status code (0 or 1 when code is
// -1), and decodes stdout.
func runJSON(t *testing.T, code int, args ...string) map[string]any {
	t.Helper()
	out, errOut, got := runCLI(t, args...)
	if code == -1 {
		require.Contains(t, []int{0, 1}, got, "regstore %q: stderr:\n%s", args, errOut)
	} else {
		require.Equal(t, code, got, "regstore %q: stderr:\n%s", args, errOut)
	}
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), "regstore %q: stdout:\n%s", args, out)
	return v
}

// kindsOf lists the "kind" of each problem object.
func kindsOf(t *testing.T, v any) []string {
	t.Helper()
	list, ok := v.([]any)
	require.True(t, ok, "want a JSON array, got %T", v)
	kinds := []string{}
	for _, p := range list {
		kinds = append(kinds, p.(map[string]any)["kind"].(string))
	}
	return kinds
}

func TestCheckClean(t *testing.T) {
	tr := buildTree(t)
	out := runOK(t, "check", tr.dir)
	assert.Equal(t, "no problems found\n", out)
	assert.Contains(t, runOK(t, "check", "--links-only", tr.dir), "no problems found (links only")

	got := runJSON(t, 0, "check", "--json", tr.dir)
	assert.Equal(t, map[string]any{"problems": []any{}, "clean": true}, got)

	// A repair of a clean tree has nothing to do, and says so.
	got = runJSON(t, 0, "check", "--json", "--repair", "all", tr.dir)
	assert.Equal(t, map[string]any{"problems": []any{}, "repairs": []any{}, "remaining": []any{}, "clean": true}, got)
}

// brokenTree is buildTree with damage check finds: a tag missing from its
// index, a temporary file, a corrupt blob and a stale upload.
func brokenTree(t *testing.T) *tree {
	tr := buildTree(t)
	require.NoError(t, regstoretest.TagWithoutIndexEntry(tr.root, "team/app", "latest"))
	require.NoError(t, regstoretest.TempFile(tr.root, "team/app", "v1"))
	require.NoError(t, regstoretest.CorruptBlob(tr.root, tr.web.Layers()[0].Digest)) // the base layer
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app/web", "8c1f0b6e-3f43-4a7e-9b0e-6f1d2a3b4c5d",
		time.Now().Add(-200*time.Hour)))
	return tr
}

func TestCheckProblems(t *testing.T) {
	tr := brokenTree(t)
	before := snapshot(t, tr.dir)

	got := runJSON(t, 1, "check", "--json", tr.dir)
	assert.Equal(t, []string{"clean", "problems"}, keys(got))
	assert.Equal(t, false, got["clean"])
	assert.ElementsMatch(t, []string{"temp-file", "upload-stale", "tag-not-in-index", "blob-corrupt"}, kindsOf(t, got["problems"]))
	for _, p := range got["problems"].([]any) {
		p := p.(map[string]any)
		assert.NotEmpty(t, p["path"], "path of %v", p)
		assert.NotEmpty(t, p["message"], "message of %v", p)
		switch p["kind"] {
		case "tag-not-in-index":
			assert.Equal(t, "team/app", p["repository"])
			assert.Equal(t, "latest", p["tag"])
			assert.Equal(t, string(tr.cur.Digest()), p["target"])
		case "blob-corrupt":
			assert.Equal(t, string(tr.web.Layers()[0].Digest), p["digest"])
		}
	}

	// --links-only does not re-hash, so the corrupt blob goes unnoticed.
	got = runJSON(t, 1, "check", "--json", "--links-only", "--workers", "1", tr.dir)
	assert.ElementsMatch(t, []string{"temp-file", "upload-stale", "tag-not-in-index"}, kindsOf(t, got["problems"]))

	// Ignored kinds neither show nor count.
	got = runJSON(t, 0, "check", "--json", "--links-only", "--ignore", "temp-file,upload-stale", "--ignore", "tag-not-in-index", tr.dir)
	assert.Equal(t, []any{}, got["problems"])
	assert.Equal(t, true, got["clean"])

	out, _, code := runCLI(t, "check", tr.dir)
	assert.Equal(t, 1, code)
	for _, want := range []string{
		"tag-not-in-index: tag team/app:latest points at " + string(tr.cur.Digest()),
		"blob-corrupt: blob " + string(tr.web.Layers()[0].Digest),
		"found 4 problems: 1 blob-corrupt, 1 tag-not-in-index, 1 temp-file, 1 upload-stale\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.Equal(t, before, snapshot(t, tr.dir), "check changed the tree")
}

func TestCheckRepair(t *testing.T) {
	tr := brokenTree(t)
	before := snapshot(t, tr.dir)

	// A dry run lists the repairs and changes nothing.
	got := runJSON(t, 1, "check", "--json", "--repair", "restore-tag-index,quarantine", "--dry-run", tr.dir)
	assert.Equal(t, []string{"clean", "problems", "repairs"}, keys(got), "no remaining in a dry run")
	repairs := got["repairs"].([]any)
	require.Len(t, repairs, 2)
	ops := map[string]map[string]any{}
	for _, a := range repairs {
		a := a.(map[string]any)
		ops[a["op"].(string)] = a
		assert.Equal(t, true, a["dryRun"])
	}
	require.Contains(t, ops, "write-link")
	require.Contains(t, ops, "quarantine")
	assert.Equal(t, "tag-not-in-index", ops["write-link"]["kind"])
	assert.Equal(t, string(tr.cur.Digest()), ops["write-link"]["link"])
	assert.Equal(t, "blob-corrupt", ops["quarantine"]["kind"])
	assert.Equal(t, before, snapshot(t, tr.dir), "check --repair --dry-run changed the tree")

	human, _, code := runCLI(t, "check", "--repair", "restore-tag-index", "--dry-run", tr.dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, human, "repairs (dry run, nothing changed):\n  write-link  ")
	assert.Equal(t, before, snapshot(t, tr.dir))

	// The real repair fixes the tag index; what it does not handle remains.
	got = runJSON(t, 1, "check", "--json", "--links-only", "--repair", "restore-tag-index", tr.dir)
	assert.Len(t, got["repairs"], 1)
	assert.Equal(t, false, got["clean"])
	assert.ElementsMatch(t, []string{"temp-file", "upload-stale"}, kindsOf(t, got["remaining"]))
	d, err := tr.repoApp.Tag("latest")
	require.NoError(t, err)
	var history []string
	for h, err := range d.History() {
		require.NoError(t, err)
		history = append(history, string(h))
	}
	assert.Contains(t, history, string(tr.cur.Digest()), "latest's index after the repair")

	// Quarantining the corrupt blob leaves the manifests that use it
	// without it: the repair did not make the tree clean.
	got = runJSON(t, 1, "check", "--json", "--repair", "quarantine", "--ignore", "temp-file,upload-stale", tr.dir)
	assert.Equal(t, []string{"blob-corrupt"}, kindsOf(t, got["problems"]))
	// (Its two _layers links now name missing data, and three manifests use it.)
	assert.ElementsMatch(t, []string{"blob-missing", "blob-missing", "reference-missing", "reference-missing", "reference-missing"},
		kindsOf(t, got["remaining"]))
	assert.FileExists(t, filepath.Join(tr.dir, filepath.FromSlash(regstore.DefaultLayoutRoot), regstore.QuarantineDir,
		filepath.FromSlash(tr.root.Layout().BlobData(tr.web.Layers()[0].Digest)[len(regstore.DefaultLayoutRoot)+1:])))
}

// A repair that fixes everything exits with status 0.
func TestCheckRepairClean(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, regstoretest.TagWithoutIndexEntry(tr.root, "team/app", "latest"))
	runJSON(t, 1, "check", "--json", "--links-only", tr.dir)
	out := runOK(t, "check", "--repair", "restore-tag-index", tr.dir)
	assert.Contains(t, out, "found 1 problem: 1 tag-not-in-index\n")
	assert.Contains(t, out, "\nrepairs:\n  write-link  ")
	assert.Contains(t, out, "after repair: no problems remain\n")
	got := runJSON(t, 0, "check", "--json", tr.dir)
	assert.Equal(t, []any{}, got["problems"])
}

func TestCheckUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"check", "--repair", "bogus", dir}, `unknown repair "bogus"`},
		{[]string{"check", "--ignore", "bogus", dir}, `unknown problem kind "bogus"`},
		{[]string{"check", "--dry-run", dir}, "--dry-run needs --repair"},
		{[]string{"check", "--workers", "0", dir}, "--workers must be at least 1"},
		{[]string{"check", "--progress", "--no-progress", dir}, "exclusive"},
		{[]string{"check", filepath.Join(dir, "missing")}, "no such file or directory"},
	} {
		out, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, 2, code, "regstore %q", c.args)
		assert.Empty(t, out, "stdout of %q", c.args)
		assert.Contains(t, errOut, c.stderr, "stderr of %q", c.args)
	}
}

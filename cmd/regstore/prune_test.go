package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agePushes sets the push times of team/app's tags: latest 1 day ago,
// docker 2, v1 3 and multi 4 days ago.
func agePushes(t *testing.T, tr *tree) {
	now := time.Now()
	for tag, days := range map[string]int{"latest": 1, "docker": 2, "v1": 3, "multi": 4} {
		p := filepath.Join(tr.dir, filepath.FromSlash(tr.root.Layout().TagCurrent("team/app", tag)))
		when := now.Add(-time.Duration(days) * 24 * time.Hour)
		require.NoError(t, os.Chtimes(p, when, when))
	}
}

func TestPruneDryRunJSON(t *testing.T) {
	tr := buildTree(t)
	agePushes(t, tr)
	before := snapshot(t, tr.dir)
	got := runJSON(t, 0, "prune", "--dry-run", "--json", "--keep-last", "1", "--repos", "team/app", "--grace", "-1s", tr.dir)
	assert.Equal(t, before, snapshot(t, tr.dir), "prune --dry-run changed the tree")
	assert.Equal(t, true, got["dryRun"])
	assert.Equal(t, true, got["deleteUntagged"])
	tags := got["tags"].([]any)
	require.Len(t, tags, 4, "team/app only: %v", tags)
	var order []string
	for _, x := range tags {
		m := x.(map[string]any)
		assert.Equal(t, "team/app", m["repository"])
		order = append(order, m["action"].(string)+" "+m["tag"].(string))
		for _, k := range []string{"digest", "pushed", "rule", "manifestKept"} {
			assert.Contains(t, m, k)
		}
	}
	assert.Equal(t, []string{"keep latest", "remove docker", "remove v1", "remove multi"}, order)
	v1 := tags[2].(map[string]any)
	assert.Equal(t, string(tr.cur.Digest()), v1["digest"])
	assert.Equal(t, true, v1["manifestKept"], "v1 shares its manifest with latest")
	assert.Equal(t, false, tags[1].(map[string]any)["manifestKept"])
	assert.Greater(t, got["bytes"].(float64), float64(0))

	// The tree was written just now: with the default grace window the
	// collection after the prune frees nothing yet.
	got = runJSON(t, 0, "prune", "--dry-run", "--json", "--keep-last", "1", "--repos", "team/app", "--grace", "2h", tr.dir)
	assert.Equal(t, float64(0), got["bytes"])

	// The human form says the same.
	out := runOK(t, "prune", "--dry-run", "--keep-last", "1", "--repos", "team/app", "--grace=-1s", tr.dir)
	assert.Contains(t, out, "would remove 3 of 4 tags in 1 repositories\n")
	assert.Contains(t, out, `stay until "regstore gc --delete-untagged", which then frees`)
	assert.Contains(t, out, "keep-last 1")
}

func TestPruneApplyThenGC(t *testing.T) {
	tr := buildTree(t)
	agePushes(t, tr)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("rules:\n  - repositories: team/app\n    keep-tags: [multi]\n    keep-last: 1\n"), 0o644))
	got := runJSON(t, 0, "prune", "--json", "--policy", policy, "--grace=-1s", tr.dir)
	assert.Equal(t, false, got["dryRun"])
	assert.Equal(t, []string{"latest", "multi"}, tagNames(t, tr.repoApp))
	assert.Equal(t, []string{"1.0"}, tagNames(t, tr.repoWeb), "team/app/web: no rule matches")

	// The collection frees what the prune said.
	planned := got["bytes"].(float64)
	plan, _ := gcJSON(t, "--delete-untagged", "--grace=-1s", tr.dir)
	assert.Equal(t, int64(planned), plan.Bytes)
	_, err := tr.repoApp.Manifest(tr.cur.Digest())
	assert.NoError(t, err, "latest's manifest (also v1's) stays")
	_, err = tr.repoApp.Manifest(tr.child.Digest())
	assert.NoError(t, err, "the kept index's child stays")
	_, err = tr.repoApp.Manifest(tr.sig.Digest())
	assert.NoError(t, err, "the referrer of a kept manifest stays")
	_, err = tr.repoApp.Manifest(tr.dock.Digest())
	assert.Error(t, err, "docker's manifest went")
}

func TestPruneGraceAndUsage(t *testing.T) {
	tr := buildTree(t) // every tag pushed just now
	got := runJSON(t, 0, "prune", "--dry-run", "--json", "--keep-last", "0", tr.dir)
	for _, x := range got["tags"].([]any) {
		m := x.(map[string]any)
		assert.Equal(t, "keep", m["action"], "%v", m)
		assert.Equal(t, "grace 1h0m0s", m["rule"])
	}
	got = runJSON(t, 0, "prune", "--dry-run", "--json", "--keep-last", "0", "--grace", "-1s", tr.dir)
	for _, x := range got["tags"].([]any) {
		assert.Equal(t, "remove", x.(map[string]any)["action"], "grace off: %v", x)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - keep-last: 1\n    keep-tag: [x]\n"), 0o644))
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"prune", tr.dir}, "give --policy, or at least one of"},
		{[]string{"prune", "--policy", bad, "--keep-last", "1", tr.dir}, "--policy excludes"},
		{[]string{"prune", "--policy", bad, tr.dir}, bad + `:3: unknown field "keep-tag"`},
		{[]string{"prune", "--keep-tags", "(", tr.dir}, "keep-tags: error parsing regexp"},
		{[]string{"prune", "--keep-last", "1", "--repos", "[x]", tr.dir}, "not supported"},
		{[]string{"prune", "--keep-within", "soon", tr.dir}, "--keep-within"},
		{[]string{"prune", "--keep-last", "1", "--grace", "0", tr.dir}, "--grace 0 is ambiguous"},
	} {
		out, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Contains(t, errOut, c.stderr, "%q", c.args)
		assert.Empty(t, out)
	}
	out := runOK(t, "help", "prune")
	assert.Contains(t, out, "--keep-within duration")
	assert.Contains(t, out, `"manifestKept"`)
}

func TestPruneNoBytes(t *testing.T) {
	tr := buildTree(t)
	agePushes(t, tr)
	got := runJSON(t, 0, "prune", "--dry-run", "--json", "--no-bytes", "--keep-last", "1", "--grace=-1s", tr.dir)
	assert.Nil(t, got["bytes"])
	assert.Len(t, got["tags"], 5)
	out := runOK(t, "prune", "--dry-run", "--no-bytes", "--keep-last", "1", "--grace=-1s", tr.dir)
	assert.Contains(t, out, "stay until \"regstore gc --delete-untagged\"\n")
	assert.NotContains(t, out, "frees")
}

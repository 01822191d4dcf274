package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPruneThenGC: the real registry v3 writes a tree (crane pushes:
// images sharing a base layer, a tag sharing another's manifest, a
// manifest copied to a second repository, an index whose children are
// tagged too, a cosign-style signature tag); regstore prune, then regstore
// gc --delete-untagged, run beside the serving registry. Afterwards the
// registry serves every kept tag (crane validate downloads and checks every
// blob), every manifest a removed tag shared with something kept, and
// nothing of what only removed tags needed; the collection frees the bytes
// the prune announced.
func TestPruneThenGC(t *testing.T) {
	requireBinary(t, "crane")
	reg := startRegistry(t, V3, filepath.Join(t.TempDir(), "root"), RegistryOptions{})
	bin := buildRegstoreCLI(t)
	dir := t.TempDir()
	layer := func(i int) string {
		return makeLayerTar(t, dir, fmt.Sprintf("l%d.tar", i), map[string]string{fmt.Sprintf("f%d", i): fmt.Sprintf("layer %d", i)})
	}
	const app, mirror = "prune/app", "prune/mirror"
	base := layer(0)
	d := map[string]string{} // tag of app -> digest
	for i := 1; i <= 5; i++ {
		tag := fmt.Sprintf("b%d", i)
		d[tag] = craneAppend(t, reg.Ref(app+":"+tag), true, base, layer(i))
	}
	craneTag(t, reg.Ref(app+":b5"), "old-b5") // shares b5's manifest
	d["old-b5"] = d["b5"]
	mustTool(t, "crane", "copy", "--insecure", reg.Ref(app+":b2"), reg.Ref(mirror+":keep")) // b2's manifest, in another repository
	d["c1"] = craneAppend(t, reg.Ref(app+":c1"), true, layer(6))
	d["arm"] = craneSetPlatform(t, reg.Ref(app+":c1"), "linux/arm64", reg.Ref(app+":arm"))
	d["multi"] = craneIndexAppend(t, reg.Ref(app+":multi"), false, reg.Ref(app+":c1"), reg.Ref(app+":arm"))
	sigTag := "sha256-" + strings.TrimPrefix(d["b5"], "sha256:") + ".sig"
	d[sigTag] = craneAppend(t, reg.Ref(app+":"+sigTag), true, layer(7))

	// Push times, as the registry recorded them, set apart by days.
	days := map[string]int{"b5": 1, "b4": 2, "old-b5": 3, "b3": 4, "b2": 5, "b1": 6, "c1": 7, "arm": 7, "multi": 8, sigTag: 9}
	now := time.Now()
	for tag, n := range days {
		p := repoPath(reg.Root, app, "_manifests", "tags", tag, "current", "link")
		require.Equal(t, d[tag], readLink(t, p), "%s:%s as crane pushed it", app, tag)
		when := now.Add(-time.Duration(n) * 24 * time.Hour)
		require.NoError(t, os.Chtimes(p, when, when))
	}
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("rules:\n  - repositories: prune/app\n    keep-last: 2\n    keep-tags: [multi]\n"), 0o644))

	// The plan, then the prune, with the registry serving.
	out, combined, err := runTool(t, bin, "prune", "--json", "--policy", policy, "--grace=-1s", reg.Root)
	require.NoError(t, err, combined)
	var plan struct {
		Tags []struct {
			Repository, Tag, Digest, Action, Rule string
			ManifestKept                          bool
		}
		Bytes int64
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan))
	got := map[string]string{}
	for _, tg := range plan.Tags {
		assert.Equal(t, app, tg.Repository)
		assert.Equal(t, d[tg.Tag], tg.Digest, "%s: the digest the registry wrote", tg.Tag)
		got[tg.Tag] = tg.Action + " " + tg.Rule
	}
	assert.Equal(t, "keep keep-last 2", got["b5"])
	assert.Equal(t, "keep keep-last 2", got["b4"])
	assert.Equal(t, "keep keep-tags multi", got["multi"])
	assert.Equal(t, "keep referrer of "+d["b5"], got[sigTag])
	for _, tag := range []string{"old-b5", "b3", "b2", "b1", "c1", "arm"} {
		assert.True(t, strings.HasPrefix(got[tag], "remove "), "%s: %s", tag, got[tag])
	}

	tags, status := listTags(t, reg.Host, app)
	require.Equal(t, http.StatusOK, status)
	assert.ElementsMatch(t, []string{"b4", "b5", "multi", sigTag}, tags, "the registry lists the kept tags only")

	gcOut, combined, err := runTool(t, bin, "gc", "--json", "--delete-untagged", "--grace=-1s", reg.Root)
	require.NoError(t, err, combined)
	var gcPlan struct{ Bytes int64 }
	require.NoError(t, json.Unmarshal([]byte(gcOut), &gcPlan))
	assert.Equal(t, plan.Bytes, gcPlan.Bytes, "the collection frees what the prune announced")
	assert.Greater(t, gcPlan.Bytes, int64(0))

	// Every kept tag is served whole.
	for _, tag := range []string{"b4", "b5", "multi", sigTag} {
		craneValidate(t, reg.Ref(app+":"+tag))
	}
	craneValidate(t, reg.Ref(mirror+":keep"))
	// What removed tags shared with kept ones is still there.
	for _, c := range []struct{ repo, tag string }{{app, "old-b5"}, {mirror, "b2"}, {app, "c1"}, {app, "arm"}} {
		res := getManifest(t, reg.Host, c.repo, d[c.tag])
		assert.Equal(t, http.StatusOK, res.Status, "%s@%s (removed tag %s's manifest, shared) after gc", c.repo, d[c.tag], c.tag)
	}
	craneValidate(t, reg.Ref(mirror+"@"+d["b2"]))
	// What only removed tags needed is gone.
	for _, tag := range []string{"b1", "b3"} {
		res := getManifest(t, reg.Host, app, d[tag])
		assert.Equal(t, http.StatusNotFound, res.Status, "%s@%s (only tag %s) after gc", app, d[tag], tag)
	}
	// The removed tags are unknown.
	for _, tag := range []string{"old-b5", "b1", "c1"} {
		res := headManifest(t, reg.Host, app, tag)
		assert.Equal(t, http.StatusNotFound, res.Status, "%s:%s after prune", app, tag)
	}
}

package s3_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRequestEconomy counts the S3 requests of a garbage-collection dry run
// over the generated tree: regstore's gc.Mark (counted by the SDK
// middleware, and checked against a counting proxy) against the v3.1.2
// registry's garbage-collect --dry-run through the same proxy. Both must
// find the same blobs to delete.
func TestRequestEconomy(t *testing.T) {
	peer(t, "registry", registryHint)
	g := generated(t)
	proxy := startCountingProxy(t)
	f := newFSAt(t, proxy.Endpoint, g.Root)
	s, err := regstore.Open(f)
	require.NoError(t, err)

	type run struct {
		name  string
		opts  gc.Options
		plan  *gc.Plan
		reqs  int64
		wall  time.Duration
		byOp  string
		proxy map[string]int64
	}
	var runs []*run
	for _, r := range []*run{
		{name: "regstore gc.Mark, default grace (1h)", opts: gc.Options{}},
		{name: "regstore gc.Mark, grace off", opts: gc.Options{Grace: -1}},
	} {
		proxy.Reset()
		f.Stats().Reset()
		start := time.Now()
		plan, err := gc.Mark(context.Background(), s, r.opts)
		r.wall = time.Since(start)
		require.NoError(t, err, r.name)
		r.plan, r.reqs, r.byOp, r.proxy = plan, f.Stats().Total(), f.Stats().String(), proxy.Snapshot()
		assert.Equal(t, r.reqs, total(r.proxy), "%s: middleware and proxy counts agree", r.name)
		runs = append(runs, r)
	}

	proxy.Reset()
	out, wall := garbageCollect(t, registryS3Config(t, proxy.Endpoint, g.Root, "127.0.0.1:0"), false)
	regCounts := proxy.Snapshot()
	reg := total(regCounts)

	t.Logf("tree: %d repositories, %d manifests, %d tags, %d blobs, %d layer links; %d objects",
		g.Stats.Repositories, g.Stats.Manifests, g.Stats.Tags, g.Stats.Blobs, g.Stats.LayerLinks, g.Objects)
	t.Logf("registry garbage-collect --dry-run: %d requests in %v: %s", reg, wall.Round(time.Millisecond), formatCounts(regCounts))
	for _, r := range runs {
		t.Logf("%s: %d requests (%.3f of the registry's, 1/%.1f) in %v (registry/regstore wall time %.1fx): %s",
			r.name, r.reqs, float64(r.reqs)/float64(reg), float64(reg)/float64(r.reqs), r.wall.Round(time.Millisecond),
			float64(wall)/float64(r.wall), r.byOp)
	}

	// Same result: the blobs the registry would delete are the plan's.
	var regBlobs []digest.Digest
	for _, m := range regexp.MustCompile(`blob eligible for deletion: (\S+)`).FindAllStringSubmatch(out, -1) {
		regBlobs = append(regBlobs, digest.Digest(m[1]))
	}
	slices.Sort(regBlobs)
	assert.Equal(t, regBlobs, runs[1].plan.Blobs, "blobs eligible for deletion, registry and regstore")
	assert.Contains(t, out, "blobs marked", "registry output:\n%s", tail(out, 500))
	if !strings.Contains(out, "eligible for deletion") {
		t.Logf("registry output:\n%s", tail(out, 2000))
	}

	// The target: at most a tenth of the registry's requests. Marking
	// takes link targets and ages from one flat listing (ETags as content
	// MD5s) and blob existence from another; only manifests are read.
	// (Wall time is reported above, not asserted.)
	for _, r := range runs {
		assert.LessOrEqual(t, r.reqs*10, reg, "%s: at most 1/10 of the registry's %d requests", r.name, reg)
	}
}

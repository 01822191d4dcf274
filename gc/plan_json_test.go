package gc_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/regstore/regstore/gc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlanJSONGraceOff: with the grace window off, the plan's cutoff is
// null in JSON (not a time a century ahead), and decoding it gives a plan
// that sweeps the same as the original.
func TestPlanJSONGraceOff(t *testing.T) {
	g := buildGCTree(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		grace  time.Duration
		cutoff any
	}{
		{-1, nil},
		{time.Hour, "2026-12-03T17:00:00Z"},
	} {
		plan, err := gc.Mark(ctx, g.s, gc.Options{Grace: tc.grace, Now: func() time.Time { return now }})
		require.NoError(t, err)
		assert.Equal(t, tc.grace < 0, plan.GraceOff())
		b, err := json.Marshal(plan)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		assert.Contains(t, m, "cutoff")
		assert.Equal(t, tc.cutoff, m["cutoff"], "grace %v", tc.grace)
		assert.Equal(t, "2026-12-03T18:00:00Z", m["started"])
		if tc.grace < 0 {
			assert.NotEmpty(t, m["blobs"]) // everything is young for the fixed clock otherwise
		}

		var back gc.Plan
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, plan.GraceOff(), back.GraceOff())
		assert.True(t, plan.Cutoff.Equal(back.Cutoff), "%v != %v", plan.Cutoff, back.Cutoff)
		assert.Equal(t, plan.Blobs, back.Blobs)
		assert.Equal(t, plan.LayerLinks, back.LayerLinks)
	}
}

// TestProgressTotals: marking reports repositories of a known total;
// sweeping, removals of at most the plan's items.
func TestProgressTotals(t *testing.T) {
	g := buildGCTree(t)
	var seen []gc.Progress
	opts := gc.Options{DeleteUntagged: true, Grace: -1, Workers: 1, Progress: func(p gc.Progress) { seen = append(seen, p) }}
	plan, err := gc.Mark(context.Background(), g.s, opts)
	require.NoError(t, err)
	_, err = gc.Sweep(context.Background(), g.s, plan, opts)
	require.NoError(t, err)
	items := len(plan.Blobs)
	for _, ds := range plan.Manifests {
		items += len(ds)
	}
	for _, ds := range plan.LayerLinks {
		items += len(ds)
	}
	var marks, sweeps int
	for _, p := range seen {
		switch p.Phase {
		case "mark":
			marks++
			assert.Equal(t, 2, p.TotalRepositories)
			assert.LessOrEqual(t, p.Repositories, 2)
		case "sweep":
			sweeps++
			assert.Equal(t, items, p.ToRemove)
			assert.LessOrEqual(t, p.Removed, p.ToRemove)
		}
	}
	assert.Equal(t, 2, marks)
	assert.Equal(t, items, sweeps, "nothing was young: every item removed")
}

package retain_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/retain"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

// ruleTree: repository app with b1..b6 pushed 1..6 days ago, v1.0 pushed
// 10 days ago, and latest (on b1's image) pushed 20 minutes ago, inside the
// default grace window.
func ruleTree(t *testing.T) *tree {
	tr := newTree(t)
	var b1 *regstore.Manifest
	for i := 1; i <= 6; i++ {
		m := tr.image("app", fmt.Sprintf("b%d", i))
		tr.pushed("app", fmt.Sprintf("b%d", i), time.Duration(i)*day)
		if i == 1 {
			b1 = m
		}
	}
	tr.image("app", "v1.0")
	tr.pushed("app", "v1.0", 10*day)
	tr.tag("app", "latest", b1, 20*time.Minute)
	return tr
}

func TestDecideRules(t *testing.T) {
	all := []string{"latest", "b1", "b2", "b3", "b4", "b5", "b6", "v1.0"}
	for _, tc := range []struct {
		name  string
		rule  retain.Rule
		grace time.Duration
		keep  map[string]string // tag -> rule prefix; every other tag is removed
	}{
		{"keep-last", retain.Rule{KeepLast: 2},
			0, map[string]string{"latest": "keep-last 2", "b1": "keep-last 2"}},
		{"keep-within, boundary excluded", retain.Rule{KeepWithin: 3 * day},
			0, map[string]string{"latest": "keep-within 3d", "b1": "keep-within 3d", "b2": "keep-within 3d"}},
		{"keep-tags", retain.Rule{KeepTags: []string{`v\d+(\.\d+)*`}},
			0, map[string]string{"v1.0": `keep-tags v\d+(\.\d+)*`, "latest": "grace 1h0m0s"}},
		{"considered tags", retain.Rule{Tags: []string{"b.*"}, KeepLast: 1},
			0, map[string]string{"latest": "not considered", "v1.0": "not considered", "b1": "keep-last 1"}},
		{"keep-last 0 keeps the grace window", retain.Rule{KeepLast: 0},
			0, map[string]string{"latest": "grace 1h0m0s"}},
		{"grace off", retain.Rule{KeepLast: 0},
			-1, map[string]string{}},
		{"wider grace", retain.Rule{KeepLast: 0},
			36 * time.Hour, map[string]string{"latest": "grace 36h0m0s", "b1": "grace 36h0m0s"}},
		{"rules are OR'ed", retain.Rule{KeepLast: 1, KeepWithin: 2*day + time.Hour, KeepTags: []string{"v.*"}},
			0, map[string]string{"latest": "keep-last 1", "b1": "keep-within 49h0m0s", "b2": "keep-within", "v1.0": "keep-tags v.*"}},
		{"keep-tags win over not considered", retain.Rule{Tags: []string{"b.*"}, KeepTags: []string{"latest"}, KeepLast: 0},
			0, map[string]string{"latest": "keep-tags latest", "v1.0": "not considered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := ruleTree(t)
			opts := tr.opts()
			opts.Grace = tc.grace
			plan := tr.decide(&retain.Policy{Rules: []retain.Rule{tc.rule}}, opts)
			got := decisions(plan)
			require.Len(t, got, len(all))
			for _, tag := range all {
				d := got["app:"+tag]
				if want, ok := tc.keep[tag]; ok {
					assert.Equal(t, retain.Keep, d.Action, "%s: %s", tag, d.Rule)
					assert.True(t, strings.HasPrefix(d.Rule, want), "%s: rule %q, want prefix %q", tag, d.Rule, want)
					assert.True(t, d.ManifestKept, "%s: a kept tag's manifest stays", tag)
				} else {
					assert.Equal(t, retain.Remove, d.Action, "%s: %s", tag, d.Rule)
					assert.NotEmpty(t, d.Rule, "a removal says why")
				}
			}
			// Most recent first.
			for i := 1; i < len(plan.Tags); i++ {
				assert.False(t, plan.Tags[i].Pushed.After(plan.Tags[i-1].Pushed), "plan order at %d", i)
			}
		})
	}
}

func TestDecideRemovalReason(t *testing.T) {
	tr := ruleTree(t)
	plan := tr.decide(&retain.Policy{Rules: []retain.Rule{{KeepLast: 2, KeepWithin: day, KeepTags: []string{"x"}, Line: 7}}}, tr.opts())
	d := decisions(plan)["app:b4"]
	assert.Equal(t, retain.Remove, d.Action)
	assert.Equal(t, "rank 5 > keep-last 2, pushed 4d before the start > keep-within 1d, no keep-tags match (rule at line 7)", d.Rule)
	assert.Equal(t, digest.Digest(""), decisions(plan)["app:nope"].Digest)
	assert.True(t, tr.now.Add(-4*day).Equal(d.Pushed), "push time is the current link's modification time")
}

func TestDecideRepositories(t *testing.T) {
	tr := newTree(t)
	for _, repo := range []string{"org/a", "org/a/deep", "org/b", "lib", "skip/x"} {
		tr.image(repo, "t1")
		tr.image(repo, "t2")
		tr.pushed(repo, "t1", day)
	}
	p := &retain.Policy{Rules: []retain.Rule{
		{Repositories: []string{"org/a"}, KeepLast: 2},
		{Repositories: []string{"org/*"}, KeepLast: 1}, // org/a matched first
		{Repositories: []string{"lib", "org/**"}, KeepLast: 0},
	}}
	got := decisions(tr.decide(p, tr.opts()))
	assert.Equal(t, retain.Keep, got["org/a:t2"].Action, "first match wins: org/a keeps 2")
	assert.Equal(t, retain.Remove, got["org/b:t2"].Action, "org/b keeps the most recent one")
	assert.Equal(t, retain.Keep, got["org/b:t1"].Action)
	assert.Equal(t, retain.Remove, got["org/a/deep:t1"].Action, "* does not cross /; ** does")
	assert.Equal(t, retain.Remove, got["lib:t1"].Action)
	_, ok := got["skip/x:t1"]
	assert.False(t, ok, "a repository no rule matches is not looked at")

	opts := tr.opts()
	opts.Repositories = []string{"org/b"}
	got = decisions(tr.decide(p, opts))
	assert.Len(t, got, 2, "Options.Repositories limits the run: %v", got)
}

func TestIdenticalPushTimes(t *testing.T) {
	tr := newTree(t)
	for _, tag := range []string{"a", "c", "b", "build-10", "build-9"} {
		tr.image("app", tag)
		tr.pushed("app", tag, 2*day) // all at once
	}
	p := &retain.Policy{Rules: []retain.Rule{{KeepLast: 2}}}
	var first []string
	for range 5 {
		plan := tr.decide(p, tr.opts())
		var order []string
		for _, d := range plan.Tags {
			order = append(order, string(d.Action)+" "+d.Tag)
		}
		if first == nil {
			first = order
		}
		assert.Equal(t, first, order, "the order is stable")
	}
	// Equal times: the greater name counts as more recent (byte order).
	assert.Equal(t, []string{"keep c", "keep build-9", "remove build-10", "remove b", "remove a"}, first)
	// A difference of a nanosecond decides before names do.
	require.NoError(t, tr.mem.Chtimes(tr.s.Layout().TagCurrent("app", "a"), tr.now.Add(-2*day+time.Nanosecond)))
	plan := tr.decide(p, tr.opts())
	assert.Equal(t, "a", plan.Tags[0].Tag)
	assert.Equal(t, "c", plan.Tags[1].Tag)
}

func TestSharedDigests(t *testing.T) {
	tr := newTree(t)
	img := tr.image("app", "new")
	tr.tag("app", "old", img, 3*day) // same manifest, older tag
	tr.pushed("app", "new", day)
	shared := tr.image("app", "other")
	tr.pushed("app", "other", 2*day)
	// The same image in another repository, which no rule covers.
	mirror := tr.repo("mirror")
	for _, d := range blobsOf(shared)[1:] {
		_, err := mirror.Mount(tr.repo("app"), d)
		require.NoError(t, err)
	}
	_, err := mirror.PutManifest("", shared.Bytes(), "x")
	require.NoError(t, err)
	gone := tr.image("app", "gone")
	tr.pushed("app", "gone", 4*day)

	p := &retain.Policy{Rules: []retain.Rule{{Repositories: []string{"app"}, KeepLast: 1}}}
	plan := tr.decide(p, tr.opts())
	got := decisions(plan)
	assert.Equal(t, retain.Keep, got["app:new"].Action)
	for _, tag := range []string{"old", "other", "gone"} {
		assert.Equal(t, retain.Remove, got["app:"+tag].Action, tag)
	}
	assert.True(t, got["app:old"].ManifestKept, "old shares its manifest with the kept tag new")
	// The collection's mark set is global: a manifest mirror keeps keeps
	// its untagged revision in app too.
	assert.True(t, got["app:other"].ManifestKept, "other's manifest is kept through mirror")
	assert.False(t, got["app:gone"].ManifestKept)
	assert.True(t, plan.DeleteUntagged)

	for _, d := range append(blobsOf(img), blobsOf(shared)...) {
		assert.NotContains(t, plan.GC.Blobs, d, "a blob a kept tag (in any repository) needs stays")
	}
	assert.ElementsMatch(t, blobsOf(gone), plan.GC.Blobs)
	assert.Equal(t, tr.size(blobsOf(gone)...), plan.Bytes, "bytes: exactly gone's blobs")
	assert.ElementsMatch(t, []digest.Digest{gone.Digest()}, plan.GC.Manifests["app"])

	// The view without the removed tags is the tree after the prune.
	after := tr.pruneAndMark(plan, tr.opts())
	assert.Equal(t, plan.GC.Blobs, after.Blobs)
	assert.Equal(t, plan.GC.Manifests, after.Manifests)
	assert.Equal(t, plan.Bytes, after.Bytes)

	// KeepUntagged: the collection after is a plain one, which frees
	// nothing here.
	tr2 := newTree(t)
	tr2.image("app", "a")
	tr2.image("app", "b")
	tr2.pushed("app", "a", day)
	plan = tr2.decide(&retain.Policy{KeepUntagged: true, Rules: []retain.Rule{{KeepLast: 1}}}, tr2.opts())
	assert.Equal(t, retain.Remove, decisions(plan)["app:b"].Action)
	assert.True(t, decisions(plan)["app:b"].ManifestKept)
	assert.False(t, plan.DeleteUntagged)
	assert.Zero(t, plan.Bytes)
}

func TestIndexChildren(t *testing.T) {
	tr := newTree(t)
	c1, c2 := tr.image("multi", "c1-amd64"), tr.image("multi")
	idx := pushIndex(tr, "multi", []*regstore.Manifest{c1, c2}, "v2")
	c3 := tr.image("multi")
	old := pushIndex(tr, "multi", []*regstore.Manifest{c3}, "old")
	c4 := tr.image("multi")
	alsoOld := pushIndex(tr, "multi", []*regstore.Manifest{c4}, "old2")
	tr.tag("multi", "c4-arm64", c4, 2*day)

	p := &retain.Policy{Rules: []retain.Rule{{KeepTags: []string{"v.*", "c4-.*"}}}}
	plan := tr.decide(p, tr.opts())
	got := decisions(plan)
	assert.Equal(t, retain.Keep, got["multi:v2"].Action)
	assert.Equal(t, retain.Remove, got["multi:c1-amd64"].Action)
	assert.True(t, got["multi:c1-amd64"].ManifestKept, "a child of a kept index stays")
	assert.False(t, got["multi:old"].ManifestKept)
	assert.False(t, got["multi:old2"].ManifestKept)
	for _, m := range []*regstore.Manifest{idx, c1, c2, c4} {
		for _, d := range blobsOf(m) {
			assert.NotContains(t, plan.GC.Blobs, d, "kept index %s, its children and a kept child's blobs stay", m.Digest())
		}
	}
	wantGone := append(blobsOf(old), blobsOf(c3)...)
	wantGone = append(wantGone, alsoOld.Digest())
	assert.ElementsMatch(t, wantGone, plan.GC.Blobs, "a removed index takes its untagged children along")

	after := tr.pruneAndMark(plan, tr.opts())
	assert.Equal(t, plan.GC.Blobs, after.Blobs)
	assert.Equal(t, plan.Bytes, after.Bytes)
}

func pushIndex(tr *tree, repo string, children []*regstore.Manifest, tags ...string) *regstore.Manifest {
	tr.t.Helper()
	m := pushIndexT(tr.t, tr.repo(repo), children, tags...)
	for _, tag := range tags {
		tr.pushed(repo, tag, 365*day)
	}
	return m
}

func TestReferrers(t *testing.T) {
	tr := newTree(t)
	v1 := tr.image("signed", "v1")
	sig := tr.referrer("signed", v1, "sig-v1")
	sbom := tr.referrer("signed", sig, "sbom-of-sig") // a referrer of a referrer
	tr.pushed("signed", "sbom-of-sig", 1*day)         // evaluated before sig-v1
	cosign := tr.referrer("signed", nil, "sha256-"+v1.Digest().Encoded()+".sig")
	dev := tr.image("signed", "dev")
	devSig := tr.referrer("signed", dev, "sig-dev")
	c := tr.image("signed")
	idx := pushIndex(tr, "signed", []*regstore.Manifest{c}, "v2")
	childSig := tr.referrer("signed", c, "sig-child") // subject is a child of a kept index
	untaggedSig := tr.referrer("signed", v1)

	p := &retain.Policy{Rules: []retain.Rule{{KeepTags: []string{"v.*"}}}}
	plan := tr.decide(p, tr.opts())
	got := decisions(plan)
	for tag, subj := range map[string]digest.Digest{"sig-v1": v1.Digest(), "sbom-of-sig": sig.Digest(),
		"sha256-" + v1.Digest().Encoded() + ".sig": v1.Digest(), "sig-child": c.Digest()} {
		assert.Equal(t, retain.Keep, got["signed:"+tag].Action, tag)
		assert.Equal(t, "referrer of "+subj.String(), got["signed:"+tag].Rule, tag)
	}
	assert.Equal(t, retain.Remove, got["signed:dev"].Action)
	assert.Equal(t, retain.Remove, got["signed:sig-dev"].Action, "a referrer of a removed manifest goes")
	for _, m := range []*regstore.Manifest{v1, sig, sbom, cosign, idx, c, childSig, untaggedSig} {
		assert.NotContains(t, plan.GC.Blobs, m.Digest())
	}
	assert.Contains(t, plan.GC.Blobs, dev.Digest())
	assert.Contains(t, plan.GC.Blobs, devSig.Digest())
}

func TestPrune(t *testing.T) {
	tr := ruleTree(t)
	p := &retain.Policy{Rules: []retain.Rule{{KeepLast: 3}}}
	plan := tr.decide(p, tr.opts())
	require.Equal(t, 5, plan.Removed())
	before := plan.Bytes

	// b4 is pushed again between the plan and the prune.
	b4 := decisions(plan)["app:b4"]
	tr.pushed("app", "b4", 0)
	// b5 is deleted by someone else meanwhile.
	tg, err := tr.repo("app").Tag("b5")
	require.NoError(t, err)
	require.NoError(t, tg.Delete())

	require.NoError(t, retain.Prune(context.Background(), tr.s, plan, tr.opts()))
	got := decisions(plan)
	assert.Equal(t, retain.Keep, got["app:b4"].Action)
	assert.Equal(t, retain.RuleChanged, got["app:b4"].Rule)
	assert.Equal(t, b4.Digest, got["app:b4"].Digest)
	var left []string
	for tg, err := range tr.repo("app").Tags() {
		require.NoError(t, err)
		left = append(left, tg.Name())
	}
	assert.ElementsMatch(t, []string{"latest", "b1", "b2", "b4"}, left)
	assert.Less(t, plan.Bytes, before, "the bytes are planned again without b4")
	// History goes with the tag, as the registry's DELETE by tag does; the
	// manifest stays until the collection.
	_, err = tr.repo("app").Manifest(decisions(plan)["app:b6"].Digest)
	assert.NoError(t, err, "the manifest of a removed tag stays")

	// Read-only stores refuse.
	ro, err := regstore.Open(tr.mem, regstore.ReadOnly())
	require.NoError(t, err)
	plan = tr.decide(&retain.Policy{Rules: []retain.Rule{{KeepLast: 1}}}, tr.opts())
	assert.ErrorIs(t, retain.Prune(context.Background(), ro, plan, tr.opts()), errorsUnsupported)
}

func TestNoBytes(t *testing.T) {
	tr := ruleTree(t)
	opts := tr.opts()
	opts.NoBytes = true
	plan := tr.decide(&retain.Policy{Rules: []retain.Rule{{KeepLast: 1}}}, opts)
	assert.Nil(t, plan.GC)
	assert.Zero(t, plan.Bytes)
	assert.Equal(t, 7, plan.Removed())
}

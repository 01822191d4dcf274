package retain_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/retain"
	"github.com/stretchr/testify/require"
)

// tree is a test tree in memory. Its clock, now, is a year ahead of the
// wall clock, so that everything written by the test is old for garbage
// collection unless a push time is set closer to now.
type tree struct {
	t    *testing.T
	mem  *regstore.MemFS
	s    *regstore.Store
	now  time.Time
	seed uint64
}

func newTree(t *testing.T) *tree {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	require.NoError(t, err)
	return &tree{t: t, mem: mem, s: s, now: time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)}
}

func (tr *tree) repo(name string) *regstore.Repository {
	r, err := tr.s.Repository(name)
	require.NoError(tr.t, err, "Repository(%q)", name)
	return r
}

// image pushes a new image with one unique layer to repo and tags it; the
// tags' push time is a year ago until set with pushed.
func (tr *tree) image(repo string, tags ...string) *regstore.Manifest {
	tr.seed++
	m := regstoretest.Push(tr.t, tr.repo(repo), regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(tr.seed, 64)}}, tags...)
	for _, tag := range tags {
		tr.pushed(repo, tag, 365*24*time.Hour)
	}
	return m
}

// referrer pushes an artifact whose subject is subj.
func (tr *tree) referrer(repo string, subj *regstore.Manifest, tags ...string) *regstore.Manifest {
	tr.seed++
	var sd *v1.Descriptor
	if subj != nil {
		d := subj.Descriptor()
		sd = &d
	}
	m := regstoretest.Push(tr.t, tr.repo(repo), regstoretest.Image{ArtifactType: "application/vnd.example.sig",
		Config: []byte("{}"), ConfigMediaType: v1.MediaTypeEmptyJSON,
		Layers: []regstoretest.Layer{regstoretest.RandomLayer(tr.seed, 64)}, Subject: sd}, tags...)
	for _, tag := range tags {
		tr.pushed(repo, tag, 365*24*time.Hour)
	}
	return m
}

// tag points tag at m, pushed ago before now.
func (tr *tree) tag(repo, tag string, m *regstore.Manifest, ago time.Duration) {
	tg, err := tr.repo(repo).Tag(tag)
	require.NoError(tr.t, err)
	require.NoError(tr.t, tg.Set(m.Digest()))
	tr.pushed(repo, tag, ago)
}

// pushed sets the push time of repo:tag to ago before now.
func (tr *tree) pushed(repo, tag string, ago time.Duration) {
	require.NoError(tr.t, tr.mem.Chtimes(tr.s.Layout().TagCurrent(repo, tag), tr.now.Add(-ago)))
}

func (tr *tree) opts() retain.Options {
	return retain.Options{Now: func() time.Time { return tr.now }}
}

func (tr *tree) decide(p *retain.Policy, opts retain.Options) *retain.Plan {
	tr.t.Helper()
	plan, err := retain.Decide(context.Background(), tr.s, p, opts)
	require.NoError(tr.t, err, "Decide")
	return plan
}

// decisions maps "repo:tag" to its decision.
func decisions(plan *retain.Plan) map[string]retain.TagDecision {
	out := map[string]retain.TagDecision{}
	for _, d := range plan.Tags {
		out[d.Repository+":"+d.Tag] = d
	}
	return out
}

// blobsOf lists the blobs of manifest m: itself, its config and layers.
func blobsOf(m *regstore.Manifest) []digest.Digest {
	out := []digest.Digest{m.Digest()}
	for b := range m.Blobs() {
		out = append(out, b.Digest)
	}
	return out
}

func (tr *tree) size(ds ...digest.Digest) int64 {
	var n int64
	for _, d := range ds {
		fi, err := fs.Stat(tr.s.FS(), tr.s.Layout().BlobData(d))
		require.NoError(tr.t, err)
		n += fi.Size()
	}
	return n
}

// pruneAndMark prunes plan for real and returns the plan of the garbage
// collection after it, on the pruned tree.
func (tr *tree) pruneAndMark(plan *retain.Plan, opts retain.Options) *gc.Plan {
	tr.t.Helper()
	ctx := context.Background()
	require.NoError(tr.t, retain.Prune(ctx, tr.s, plan, opts))
	g, err := gc.Mark(ctx, tr.s, gc.Options{DeleteUntagged: plan.DeleteUntagged, Grace: opts.Grace, Now: func() time.Time { return plan.Started }})
	require.NoError(tr.t, err)
	return g
}

func pushIndexT(t *testing.T, r *regstore.Repository, children []*regstore.Manifest, tags ...string) *regstore.Manifest {
	return regstoretest.PushIndex(t, r, "", children, tags...)
}

var errorsUnsupported = errors.ErrUnsupported

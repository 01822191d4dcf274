package gc_test

import (
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for what a collection must keep or refuse when the tree
// holds something it cannot name, parse or read.

// onEveryBackend is onBothBackends plus the flat listing of an object
// store (flatFS over MemFS), where gc marks from one listing.
func onEveryBackend(t *testing.T, fn func(t *testing.T, w regstore.WriteFS)) {
	t.Helper()
	onBothBackends(t, fn)
	t.Run("flat", func(t *testing.T) { fn(t, &flatFS{MemFS: regstore.NewMemFS()}) })
}

// copyRepoLinks writes every link of repository from again below the
// directory of name (which need not be a valid name), by layout paths.
func copyRepoLinks(t *testing.T, s *regstore.Store, from, name string) {
	t.Helper()
	w, err := s.Writer()
	require.NoError(t, err)
	src, dst := s.Layout().Repository(from), s.Layout().Repository(name)
	var paths []string
	require.NoError(t, regstore.WalkFiles(s.FS(), src, func(p string, _ fs.FileInfo) error {
		paths = append(paths, p)
		return nil
	}))
	require.NotEmpty(t, paths)
	for _, p := range paths {
		d, err := regstore.ReadLink(s.FS(), p)
		require.NoError(t, err, p)
		require.NoError(t, regstore.WriteLink(w, dst+strings.TrimPrefix(p, src), d))
	}
}

// imageBlobs is the manifest and every blob it references.
func imageBlobs(m *regstore.Manifest) []digest.Digest {
	out := []digest.Digest{m.Digest()}
	for ref := range m.References() {
		out = append(out, ref.Digest)
	}
	return out
}

// requireData fails unless every blob's data is in the store.
func requireData(t *testing.T, s *regstore.Store, ds []digest.Digest, msg string) {
	t.Helper()
	for _, d := range ds {
		_, err := fs.Stat(s.FS(), s.Layout().BlobData(d))
		assert.NoError(t, err, "%s: data of %s", msg, d)
	}
}

// Item 1: a directory holding _manifests whose name regstore cannot name
// (the registry's catalog lists it and serves it when its name is one the
// route takes) is marked through whole, and nothing of it is removed, in
// both modes. Names the registry accepts (Team/app, a long host part) are
// ordinary repositories.
func TestGCKeepsRepositoriesItCannotName(t *testing.T) {
	onEveryBackend(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		seed := mustRepo(t, s, "seed")
		unnamed := regstoretest.Push(t, seed, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64)}}, "v1")
		untagged := regstoretest.Push(t, seed, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 64)}})
		invalid := []string{"tagt/App", "a___b/app", "host:5000/app"}
		for _, name := range invalid {
			require.Error(t, regstore.ValidateName(name), name)
			copyRepoLinks(t, s, "seed", name)
		}
		require.NoError(t, s.DeleteRepository("seed"))

		upper := regstoretest.Push(t, mustRepo(t, s, "Team/app"), regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(3, 64)}}, "v1")
		long := "x.y/" + strings.Repeat("l", 255)
		longImg := regstoretest.Push(t, mustRepo(t, s, long), regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(4, 64)}}, "v1")

		for _, untaggedToo := range []bool{false, true} {
			opts := gc.Options{Grace: -1, DeleteUntagged: untaggedToo}
			plan, err := gc.Mark(t.Context(), s, opts)
			require.NoError(t, err)
			assert.ElementsMatch(t, invalid, plan.Unnamed, "Unnamed")
			assert.Empty(t, plan.Blobs, "nothing is collectable (delete-untagged %v)", untaggedToo)
			assert.Empty(t, plan.LayerLinks)
			assert.Empty(t, plan.Manifests)
			res, err := gc.Sweep(t.Context(), s, plan, opts)
			require.NoError(t, err)
			assert.Empty(t, res.Blobs)
		}
		for _, m := range []*regstore.Manifest{unnamed, untagged, upper, longImg} {
			requireData(t, s, imageBlobs(m), "after gc")
		}
		for _, name := range invalid {
			_, err := fs.Stat(s.FS(), s.Layout().RevisionLink(name, untagged.Digest()))
			assert.NoError(t, err, "the untagged revision of %s stays", name)
		}
		// Once the names are gone, the data is collectable again: the
		// marks above did come from those directories.
		for _, name := range invalid {
			require.NoError(t, regstore.RemoveAll(w, s.Layout().Repository(strings.Split(name, "/")[0])))
		}
		plan, err := gc.Mark(t.Context(), s, gc.Options{Grace: -1})
		require.NoError(t, err)
		assert.Contains(t, plan.Blobs, unnamed.Digest())
	})
}

// Item 3: a well-formed revision link that names another digest than its
// path makes gc refuse, in both modes, with an error wrapping
// ErrCorruptLink; nothing is removed.
func TestGCRefusesMismatchedRevisionLink(t *testing.T) {
	onEveryBackend(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		app := mustRepo(t, s, "app")
		tagged := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64)}}, "v1")
		other := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 64)}}, "v2")
		require.NoError(t, regstore.WriteLink(w, s.Layout().RevisionLink("app", tagged.Digest()), other.Digest()))
		for _, untagged := range []bool{false, true} {
			_, err := gc.Mark(t.Context(), s, gc.Options{Grace: -1, DeleteUntagged: untagged})
			require.ErrorIs(t, err, regstore.ErrCorruptLink, "delete-untagged %v", untagged)
		}
		requireData(t, s, imageBlobs(tagged), "after the refused gc")
	})
}

// Item 4: a tag directory whose name is not a valid tag still protects the
// manifest its current link names from --delete-untagged, as the
// registry's own -m does.
func TestGCInvalidTagNameKeepsManifest(t *testing.T) {
	onEveryBackend(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		app := mustRepo(t, s, "app")
		m := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64)}})
		gone := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 64)}})
		for _, tag := range []string{".bad", strings.Repeat("t", 200)} {
			require.Error(t, regstore.ValidateTag(tag))
			require.NoError(t, regstore.WriteLink(w, s.Layout().TagIndexLink("app", tag, m.Digest()), m.Digest()))
			require.NoError(t, regstore.WriteLink(w, s.Layout().TagCurrent("app", tag), m.Digest()))
		}
		opts := gc.Options{Grace: -1, DeleteUntagged: true}
		plan, err := gc.Mark(t.Context(), s, opts)
		require.NoError(t, err)
		assert.Equal(t, []digest.Digest{gone.Digest()}, plan.Manifests["app"], "only the manifest no tag directory names goes")
		_, err = gc.Sweep(t.Context(), s, plan, opts)
		require.NoError(t, err)
		requireData(t, s, imageBlobs(m), "after gc --delete-untagged")
		_, err = app.Manifest(m.Digest())
		assert.NoError(t, err, "the manifest the invalid tags name is still in the repository")
	})
}

// Item 8: what Sweep kept of the plan is listed as skipped, with why, and
// not as removed.
func TestSweepReportsSkipped(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		app := mustRepo(t, s, "app")
		var loose []digest.Digest
		var sizes []int64
		for i := range 3 {
			b, err := app.PutBlob(regstoretest.RandomLayer(uint64(10+i), 64).Reader(), "", -1)
			require.NoError(t, err)
			loose = append(loose, b.Digest())
			sizes = append(sizes, b.Size())
		}
		backdate(t, s, time.Now().Add(-2*time.Hour))
		opts := gc.Options{}
		plan, err := gc.Mark(t.Context(), s, opts)
		require.NoError(t, err)
		require.ElementsMatch(t, loose, plan.Blobs)

		// Written again after the plan: young now.
		young := loose[1]
		require.NoError(t, w.(regstore.ChtimesFS).Chtimes(s.Layout().BlobData(young), time.Now()))
		res, err := gc.Sweep(t.Context(), s, plan, opts)
		require.NoError(t, err)
		assert.ElementsMatch(t, []digest.Digest{loose[0], loose[2]}, res.Blobs, "removed")
		assert.Equal(t, []gc.Skipped{{What: "blob", Digest: young, Why: gc.SkipYoung}}, res.Skipped)
		assert.Equal(t, sizes[0]+sizes[2], res.Bytes, "bytes removed")
		requireData(t, s, []digest.Digest{young}, "the young blob")
	})
}

// Item 9: journals are per run. A journal another run left (the legacy
// shared one too) is recovered: its moved data is put back and reported,
// and the journal goes.
func TestSweepRecoversEveryJournal(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		app := mustRepo(t, s, "app")
		m := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64), regstoretest.RandomLayer(2, 64)}}, "v1")
		l := s.Layout()
		a, b := m.Layers()[0].Digest, m.Layers()[1].Digest
		for _, c := range []struct {
			journal string
			d       digest.Digest
		}{{l.GCJournal(), a}, {l.GCRunJournal("other-run"), b}} {
			require.NoError(t, regstore.WriteFile(w, c.journal, strings.NewReader(c.d.String()+"\n")))
			require.NoError(t, regstore.Rename(w, l.BlobData(c.d), l.BlobDataAside(c.d)))
			assert.Equal(t, regstore.GCLeftover, l.Classify(c.journal, false).Kind, c.journal)
		}
		opts := gc.Options{Grace: time.Hour}
		plan, err := gc.Mark(t.Context(), s, opts)
		require.NoError(t, err)
		res, err := gc.Sweep(t.Context(), s, plan, opts)
		require.NoError(t, err)
		assert.ElementsMatch(t, []digest.Digest{a, b}, res.Restored)
		requireData(t, s, imageBlobs(m), "after recovery")
		for _, j := range []string{l.GCJournal(), l.GCRunJournal("other-run")} {
			_, err := fs.Stat(s.FS(), j)
			assert.ErrorIs(t, err, fs.ErrNotExist, "%s after recovery", j)
		}
	})
}

// nthRename calls hook before the nth rename below prefix.
type nthRename struct {
	fullBackend
	prefix string
	n      int
	seen   int
	mu     sync.Mutex
	hook   func()
}

func (h *nthRename) Rename(oldname, newname string) error {
	h.mu.Lock()
	if strings.HasPrefix(oldname, h.prefix) {
		h.seen++
	}
	run := h.seen == h.n && h.hook != nil
	h.mu.Unlock()
	if run {
		h.hook()
	}
	return h.fullBackend.Rename(oldname, newname)
}

// Item 9: two collections at once. The second runs to completion while
// the first has moved two of its four blobs aside: it puts back what the
// first moved (its journal is another run's), and the first keeps that
// data and reports it as skipped. Each blob is removed once, nothing of
// the tagged image is lost, and no journal is left.
func TestSweepConcurrentCollections(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		h := &nthRename{fullBackend: w.(fullBackend), n: 3, seen: -1 << 30}
		s, err := regstore.Open(h)
		require.NoError(t, err)
		app := mustRepo(t, s, "app")
		keep := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 64)}}, "v1")
		var loose []digest.Digest
		for i := range 4 {
			b, err := app.PutBlob(regstoretest.RandomLayer(uint64(10+i), 64).Reader(), "", -1)
			require.NoError(t, err)
			loose = append(loose, b.Digest())
		}
		backdate(t, s, time.Now().Add(-2*time.Hour))
		opts := gc.Options{Workers: 1}
		planA, err := gc.Mark(t.Context(), s, opts)
		require.NoError(t, err)
		require.Len(t, planA.Blobs, 4)

		var (
			once      sync.Once
			resB      *gc.Result
			errB      error
			journalsB []string
		)
		h.prefix = s.Layout().Blobs() + "/"
		h.hook = func() {
			once.Do(func() {
				// A has written its journal and moved two blobs aside.
				for e, err := range s.Walk() {
					require.NoError(t, err)
					if e.Kind == regstore.GCLeftover && e.Digest == "" {
						journalsB = append(journalsB, e.Path)
					}
				}
				planB, err := gc.Mark(t.Context(), s, opts)
				if err == nil {
					resB, errB = gc.Sweep(t.Context(), s, planB, opts)
				} else {
					errB = err
				}
			})
		}
		h.mu.Lock()
		h.seen = 0
		h.mu.Unlock()
		resA, err := gc.Sweep(t.Context(), s, planA, opts)
		require.NoError(t, err)
		require.NoError(t, errB)
		require.NotNil(t, resB)
		require.Len(t, journalsB, 1, "A's own journal exists while it moves data")
		assert.True(t, strings.HasPrefix(journalsB[0], s.Layout().GCRunJournal("")), journalsB[0])

		assert.ElementsMatch(t, planA.Blobs[:2], resB.Restored, "B put back what A had moved aside")
		var restored []digest.Digest
		for _, k := range resA.Skipped {
			if k.Why == gc.SkipRestored {
				restored = append(restored, k.Digest)
			}
		}
		assert.ElementsMatch(t, planA.Blobs[:2], restored, "A reports what B put back as skipped")
		removed := append(append([]digest.Digest{}, resA.Blobs...), resB.Blobs...)
		assert.ElementsMatch(t, loose, removed, "each loose blob removed once, by one of the two")
		requireData(t, s, imageBlobs(keep), "the tagged image")
		for e, err := range s.Walk() {
			require.NoError(t, err)
			assert.NotEqual(t, regstore.GCLeftover, e.Kind, "left: %s", e.Path)
		}
	})
}

package gc_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounds of TestGCLiveWriter: iteration counts, not durations.
const (
	liveWriterPushes = 32   // images the writer pushes
	liveSharedLayers = 12   // old, collectable layers the writer re-uses
	liveMinGCCycles  = 3    // collections at least, even if the writer is done
	liveMaxGCCycles  = 5000 // collections at most (a safety valve)
	// liveClockStep is how far the collector's clock moves per two pushes;
	// liveWriterPushes/2 steps must stay well below DefaultGrace.
	liveClockStep = time.Minute
)

// liveImage is an image the writer finished pushing.
type liveImage struct {
	m   *regstore.Manifest
	tag string
}

// TestGCLiveWriter runs garbage collection (plan and apply, delete-untagged,
// default grace window) over and over while another goroutine pushes
// images into the same tree. Data written before the writer starts is
// backdated beyond the grace window so that GC really removes things,
// including layers the writer then re-uses. Every image whose push
// completed must be intact afterwards.
func TestGCLiveWriter(t *testing.T) {
	onBothBackends(t, testGCLiveWriter)
}

func testGCLiveWriter(t *testing.T, w regstore.WriteFS) {
	ctx := t.Context()
	s, err := regstore.Open(w)
	require.NoError(t, err)
	app, base := mustRepo(t, s, "live/app"), mustRepo(t, s, "live/base")
	layer := func(seed uint64) regstoretest.Layer { return regstoretest.RandomLayer(seed, 256) }

	// Before the writer: a base image that stays tagged; in app an image
	// whose tag moved away (untagged, so collectable with its unique
	// layer), its successor, a loose linked blob, and for each shared
	// layer an untagged image that is the only one to use it. All of it is
	// backdated beyond the grace window, the shared images in a staircase
	// that the collector's clock climbs as the writer advances, so that
	// each shared layer becomes collectable about when the writer re-uses
	// it.
	t0 := time.Now()
	baseLayer := layer(1)
	stable := regstoretest.Push(t, base, regstoretest.Image{Layers: []regstoretest.Layer{baseLayer}}, "stable")
	untagged := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{layer(2)}}, "latest")
	regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{layer(3)}}, "latest")
	loose, err := app.PutBlob(layer(4).Reader(), "", -1)
	require.NoError(t, err)
	backdate(t, s, t0.Add(-2*time.Hour))
	shared := make([]regstoretest.Layer, liveSharedLayers)
	sharedImages := make([]*regstore.Manifest, liveSharedLayers)
	for j := range shared {
		shared[j] = layer(100 + uint64(j))
		before := listFiles(t, s)
		sharedImages[j] = regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{shared[j]}})
		for p := range listFiles(t, s) {
			if !before[p] {
				require.NoError(t, s.FS().(regstore.ChtimesFS).Chtimes(p, t0.Add(-gc.DefaultGrace-time.Second+time.Duration(j)*liveClockStep)))
			}
		}
	}

	// The writer.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		completed []liveImage
		failed    []error
		done      = make(chan struct{})
	)
	defer wg.Wait() // also when a require below ends the test early
	wg.Go(func() {
		defer close(done)
		for i := range liveWriterPushes {
			layers := []regstoretest.Layer{layer(1000 + uint64(i))}
			if i%4 == 0 {
				layers = append(layers, baseLayer) // kept by live/base
			}
			if j := i / 2; i%2 == 0 && j < len(shared) {
				layers = append(layers, shared[j]) // old and collectable
			}
			tag := fmt.Sprintf("w%d", i)
			m, err := regstoretest.PushImage(app, regstoretest.Image{Layers: layers}, tag, "latest")
			mu.Lock()
			if err != nil {
				failed = append(failed, err)
			} else {
				completed = append(completed, liveImage{m, tag})
			}
			mu.Unlock()
		}
	})

	// The collector. Its clock is t0 plus one step for every two pushes
	// the writer completed: shared layer j becomes collectable when the
	// writer is about to re-use it (push 2j). The clock stays far enough
	// behind that nothing the writer wrote is older than the grace window.
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return t0.Add(time.Duration(len(completed)+len(failed)) / 2 * liveClockStep)
	}
	opts := gc.Options{DeleteUntagged: true, Now: clock}
	var cycles, planned int
	for writing := true; cycles < liveMaxGCCycles && (writing || cycles < liveMinGCCycles); cycles++ {
		select {
		case <-done:
			writing = false
		default:
		}
		plan, err := gc.Mark(ctx, s, opts)
		require.NoError(t, err, "Mark, cycle %d", cycles)
		planned += len(plan.Blobs)
		_, err = gc.Sweep(ctx, s, plan, opts)
		require.NoError(t, err, "Sweep, cycle %d", cycles)
	}
	wg.Wait()
	t.Logf("%d GC cycles, %d blobs planned; %d pushes completed, %d failed", cycles, planned, len(completed), len(failed))
	for _, err := range failed {
		t.Logf("push failed (allowed): %v", err)
	}
	require.NotEmpty(t, completed, "no push completed")

	// Every completed image is intact.
	for _, img := range completed {
		checkImage(t, app, img.m)
		tg, err := app.Tag(img.tag)
		require.NoError(t, err)
		d, err := tg.Digest()
		if assert.NoError(t, err, "tag %s", img.tag) {
			assert.Equal(t, img.m.Digest(), d, "tag %s", img.tag)
		}
	}
	latest, err := app.Tag("latest")
	require.NoError(t, err)
	m, err := latest.Resolve()
	if assert.NoError(t, err, "Resolve(latest)") {
		assert.Equal(t, completed[len(completed)-1].m.Digest(), m.Digest(), "latest is the last completed push")
	}
	checkImage(t, base, stable)

	// GC removed old data: the untagged images, the unique layer of the
	// first, the loose blob.
	for _, m := range append([]*regstore.Manifest{untagged}, sharedImages...) {
		_, err = app.Manifest(m.Digest())
		assert.ErrorIs(t, err, fs.ErrNotExist, "untagged old manifest %s after GC", m.Digest())
	}
	for _, d := range []digest.Digest{untagged.Digest(), layerOf(t, untagged), loose.Digest()} {
		_, err := s.Blob(d)
		assert.ErrorIs(t, err, fs.ErrNotExist, "old unreferenced blob %s after GC", d)
	}
}

// checkImage asserts that manifest m can be read from r, with every blob
// it references (verified) or, for an index, every child manifest.
func checkImage(t *testing.T, r *regstore.Repository, m *regstore.Manifest) {
	t.Helper()
	got, err := r.Manifest(m.Digest())
	if !assert.NoError(t, err, "%s.Manifest(%s)", r.Name(), m.Digest()) {
		return
	}
	for ref := range got.References() {
		if got.IsIndex() {
			_, err := r.Manifest(ref.Digest)
			assert.NoError(t, err, "%s: child manifest %s of %s", r.Name(), ref.Digest, m.Digest())
			continue
		}
		b, err := r.Blob(ref.Digest)
		if assert.NoError(t, err, "%s: blob %s of %s", r.Name(), ref.Digest, m.Digest()) {
			assert.NoError(t, b.Verify(), "%s: Verify(%s) of %s", r.Name(), ref.Digest, m.Digest())
		}
	}
}

// listFiles is the set of files of the layout.
func listFiles(t *testing.T, s *regstore.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := fs.WalkDir(s.FS(), s.Layout().Root(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p] = true
		}
		return err
	})
	require.NoError(t, err)
	return out
}

// backdate sets the modification time of every file of the layout to when.
func backdate(t *testing.T, s *regstore.Store, when time.Time) {
	t.Helper()
	c, ok := s.FS().(regstore.ChtimesFS)
	require.True(t, ok, "%T has no Chtimes", s.FS())
	err := fs.WalkDir(s.FS(), s.Layout().Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return c.Chtimes(p, when)
	})
	require.NoError(t, err, "backdate")
}

// fullBackend is what MemFS and Dir both are.
type fullBackend interface {
	regstore.RenameFS
	regstore.RemoveAllFS
	regstore.ChtimesFS
	regstore.LinkFS
	fs.StatFS
	fs.ReadDirFS
	fs.ReadFileFS
}

// sweepHook calls hook once, before the first removal or rename below
// prefix made after it is armed, and then lets the call through.
type sweepHook struct {
	fullBackend
	prefix string
	mu     sync.Mutex
	armed  bool
	hook   func()
}

func (h *sweepHook) fire(name string) {
	h.mu.Lock()
	run := h.armed && strings.HasPrefix(name, h.prefix)
	if run {
		h.armed = false
	}
	h.mu.Unlock()
	if run {
		h.hook()
	}
}

func (h *sweepHook) Remove(name string) error {
	h.fire(name)
	return h.fullBackend.Remove(name)
}

func (h *sweepHook) RemoveAll(name string) error {
	h.fire(name)
	return h.fullBackend.RemoveAll(name)
}

func (h *sweepHook) Rename(oldname, newname string) error {
	h.fire(oldname)
	return h.fullBackend.Rename(oldname, newname)
}

// TestGCBlobReusedDuringSweep is the deterministic form of a race that
// TestGCLiveWriter finds: a push that re-uses an old, collectable layer
// and completes after Sweep has started, just before it touches the first
// blob, must not lose that layer.
func TestGCBlobReusedDuringSweep(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		h := &sweepHook{fullBackend: w.(fullBackend)}
		s, err := regstore.Open(h)
		require.NoError(t, err)
		h.prefix = s.Layout().Blobs() + "/sha256/"
		app := mustRepo(t, s, "app")
		old := regstoretest.RandomLayer(1, 256)
		untagged := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{old}}, "latest")
		regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 256)}}, "latest")
		backdate(t, s, time.Now().Add(-2*time.Hour))

		opts := gc.Options{DeleteUntagged: true, Workers: 1}
		plan, err := gc.Mark(t.Context(), s, opts)
		require.NoError(t, err)
		require.Contains(t, plan.Blobs, layerOf(t, untagged), "the old layer is collectable")

		var (
			pushed  *regstore.Manifest
			pushErr error
			ran     bool
		)
		h.hook = func() {
			ran = true
			pushed, pushErr = regstoretest.PushImage(app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(3, 256), old}}, "new")
		}
		h.armed = true
		_, err = gc.Sweep(t.Context(), s, plan, opts)
		require.NoError(t, err)
		require.True(t, ran, "the hook did not run")
		require.NoError(t, pushErr, "push during the sweep")
		checkImage(t, app, pushed)
	})
}

// TestGCWritesBetweenPlanAndApply: writes that complete after Mark and
// before Sweep, re-using what the plan found collectable, must survive
// Sweep, which re-validates against what was written since.
func TestGCWritesBetweenPlanAndApply(t *testing.T) {
	cases := []struct {
		name string
		// write runs between plan and apply, given the untagged old image
		// of repository app, and returns the manifests it published.
		write func(t *testing.T, app *regstore.Repository, old *regstore.Manifest) []*regstore.Manifest
	}{
		{"tag the old manifest again", func(t *testing.T, app *regstore.Repository, old *regstore.Manifest) []*regstore.Manifest {
			tg, err := app.Tag("again")
			require.NoError(t, err)
			require.NoError(t, tg.Set(old.Digest()))
			return []*regstore.Manifest{old}
		}},
		{"push an index of the old manifest", func(t *testing.T, app *regstore.Repository, old *regstore.Manifest) []*regstore.Manifest {
			return []*regstore.Manifest{regstoretest.PushIndex(t, app, "", []*regstore.Manifest{old}, "multi"), old}
		}},
		{"push re-using a linked old layer without linking it again", func(t *testing.T, app *regstore.Repository, old *regstore.Manifest) []*regstore.Manifest {
			// As a client does that finds the layer in the repository
			// (HEAD) and skips its upload.
			cfg, err := app.PutBlob(strings.NewReader(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), "", -1)
			require.NoError(t, err)
			raw, err := json.Marshal(v1.Manifest{
				Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
				Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfg.Digest(), Size: cfg.Size()},
				Layers: old.Layers(),
			})
			require.NoError(t, err)
			m, err := app.PutManifest(v1.MediaTypeImageManifest, raw, "reuse")
			require.NoError(t, err)
			return []*regstore.Manifest{m}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s, err := regstore.Open(w)
				require.NoError(t, err)
				app := mustRepo(t, s, "app")
				old := regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 256)}}, "latest")
				regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(2, 256)}}, "latest")
				backdate(t, s, time.Now().Add(-2*time.Hour))
				opts := gc.Options{DeleteUntagged: true}
				plan, err := gc.Mark(t.Context(), s, opts)
				require.NoError(t, err)
				require.Contains(t, plan.Manifests["app"], old.Digest(), "the old image is collectable")

				published := c.write(t, app, old)
				_, err = gc.Sweep(t.Context(), s, plan, opts)
				require.NoError(t, err)
				for _, m := range published {
					checkImage(t, app, m)
				}
			})
		})
	}
}

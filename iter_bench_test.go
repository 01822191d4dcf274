package regstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The iteration benchmarks run over hBenchRepos repositories named
// org%03d/app%02d, each holding one revision link and one tag (current and
// index links) on a single stored manifest.
const (
	hBenchOrgs  = 100
	hBenchApps  = 100
	hBenchRepos = hBenchOrgs * hBenchApps
)

// hHeapEvery and hHeapLimit drive the heap check: the live heap is sampled
// every hHeapEvery repositories and may grow by less than hHeapLimit bytes
// over the walk. Keeping as little as 14 bytes per repository visited
// would exceed it.
const (
	hHeapEvery = 500
	hHeapLimit = 128 << 10
)

func hBenchName(i int) string { return fmt.Sprintf("org%03d/app%02d", i/hBenchApps, i%hBenchApps) }

// hBenchFiles calls put for each file of the benchmark tree.
func hBenchFiles(l regstore.Layout, put func(p, content string) error) error {
	raw := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	d := digest.FromString(raw)
	if err := put(l.BlobData(d), raw); err != nil {
		return err
	}
	for i := range hBenchRepos {
		name := hBenchName(i)
		tag := name[len(name)-5:] // app%02d
		for _, p := range []string{l.RevisionLink(name, d), l.TagIndexLink(name, tag, d), l.TagCurrent(name, tag)} {
			if err := put(p, d.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// hBenchStore builds the benchmark tree on the backend named: on MemFS
// through the backend; on Dir with plain file writes into its directory
// (the backend's fsyncs would make building 30,000 files and 110,000
// directories slower still; the tree is the same).
func hBenchStore(tb testing.TB, backend string) *regstore.Store {
	tb.Helper()
	l, err := regstore.NewLayout(regstore.DefaultLayoutRoot)
	require.NoError(tb, err)
	var fsys regstore.WriteFS
	switch backend {
	case "MemFS":
		mem := regstore.NewMemFS()
		require.NoError(tb, hBenchFiles(l, func(p, content string) error {
			fw, err := mem.Create(p)
			if err != nil {
				return err
			}
			if _, err := fw.Write([]byte(content)); err != nil {
				return err
			}
			return fw.Commit()
		}))
		fsys = mem
	case "Dir":
		root := tb.TempDir()
		require.NoError(tb, hBenchFiles(l, func(p, content string) error {
			p = filepath.Join(root, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
				return err
			}
			return os.WriteFile(p, []byte(content), 0o666)
		}))
		dir, err := regstore.OpenDir(root)
		require.NoError(tb, err)
		tb.Cleanup(func() { dir.Close() })
		fsys = dir
	default:
		tb.Fatalf("unknown backend %q", backend)
	}
	s, err := regstore.Open(fsys)
	require.NoError(tb, err)
	return s
}

// hCountRepositories ranges over every repository and returns how many
// there were.
func hCountRepositories(tb testing.TB, s *regstore.Store) int {
	n := 0
	for _, err := range s.Repositories() {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	return n
}

// hWalkTagsManifests ranges over the repositories and, in each, over its
// tags (reading each one's current link) and its manifests.
func hWalkTagsManifests(tb testing.TB, s *regstore.Store) (tags, manifests int) {
	for r, err := range s.Repositories() {
		if err != nil {
			tb.Fatal(err)
		}
		for t, err := range r.Tags() {
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := t.Digest(); err != nil {
				tb.Fatal(err)
			}
			tags++
		}
		for _, err := range r.Manifests() {
			if err != nil {
				tb.Fatal(err)
			}
			manifests++
		}
	}
	return tags, manifests
}

// hLiveGrowth ranges over s.Repositories(), passing each repository to
// keep, and measures the live heap (HeapAlloc right after a forced
// collection) every hHeapEvery repositories. It returns the first sample
// and the largest growth of a later one over it.
//
// What the iteration may hold at any point is the directory listings of
// the path it is on: here repositories/ (100 entries) and one org
// directory (100 entries), a size that does not depend on how far the walk
// has gone. The first sample is taken once those are held, so any growth
// after it is memory kept per repository visited.
func hLiveGrowth(tb testing.TB, s *regstore.Store, keep func(*regstore.Repository)) (first uint64, growth int64) {
	var ms runtime.MemStats
	n := 0
	for r, err := range s.Repositories() {
		if err != nil {
			tb.Fatal(err)
		}
		keep(r)
		n++
		if n%hHeapEvery == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if n == hHeapEvery {
				first = ms.HeapAlloc
			}
			growth = max(growth, int64(ms.HeapAlloc)-int64(first))
		}
	}
	if n != hBenchRepos {
		tb.Fatalf("Repositories() yielded %d repositories, want %d", n, hBenchRepos)
	}
	return first, growth
}

// hCheckHeapFlat runs the heap check on s, and a control that keeps every
// repository it is given, to show that the check sees such retention.
func hCheckHeapFlat(tb testing.TB, s *regstore.Store) (growth, control int64) {
	first, growth := hLiveGrowth(tb, s, func(*regstore.Repository) {})
	var kept []*regstore.Repository
	_, control = hLiveGrowth(tb, s, func(r *regstore.Repository) { kept = append(kept, r) })
	runtime.KeepAlive(kept)
	tb.Logf("live heap %d B after %d repositories; grows by at most %d B up to %d; control keeping every repository grows by %d B",
		first, hHeapEvery, growth, hBenchRepos, control)
	assert.Less(tb, growth, int64(hHeapLimit), "live heap growth while ranging over Repositories()")
	assert.Greater(tb, control, int64(hHeapLimit), "control: the check sees a caller that keeps every repository")
	return growth, control
}

// BenchmarkRepositories10k builds the 10,000-repository tree once per
// backend, outside the timer, then:
//
//   - Repositories: ranges over every repository once per op. Besides
//     ns/op and -benchmem's B/op and allocs/op (per full listing), it
//     reports ns, allocations and bytes per repository, and the live-heap
//     check of [TestRepositoriesHeapFlat] (live-growth-B, with its control
//     in control-growth-B).
//   - TagsManifests: ranges over every repository and, in each, over its
//     tags (reading each current link) and its manifests.
func BenchmarkRepositories10k(b *testing.B) {
	for _, backend := range []string{"MemFS", "Dir"} {
		s := hBenchStore(b, backend)
		b.Run(backend+"/Repositories", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if n := hCountRepositories(b, s); n != hBenchRepos {
					b.Fatalf("Repositories() yielded %d repositories, want %d", n, hBenchRepos)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hBenchRepos, "ns/repo")
			b.ReportMetric(testing.AllocsPerRun(3, func() { hCountRepositories(b, s) })/hBenchRepos, "allocs/repo")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			hCountRepositories(b, s)
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/hBenchRepos, "B/repo")
			growth, control := hCheckHeapFlat(b, s)
			b.ReportMetric(float64(growth), "live-growth-B")
			b.ReportMetric(float64(control), "control-growth-B")
		})
		b.Run(backend+"/TagsManifests", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if tags, manifests := hWalkTagsManifests(b, s); tags != hBenchRepos || manifests != hBenchRepos {
					b.Fatalf("walk = %d tags, %d manifests, want %d each", tags, manifests, hBenchRepos)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hBenchRepos, "ns/repo")
			b.ReportMetric(testing.AllocsPerRun(1, func() { hWalkTagsManifests(b, s) })/hBenchRepos, "allocs/repo")
		})
	}
}

// TestRepositoriesHeapFlat checks that ranging over the repositories keeps
// O(1) memory per step beyond the directory listings currently open (see
// hLiveGrowth), on 10,000 repositories in memory. The same check runs on
// Dir in BenchmarkRepositories10k, and here when REGSTORE_LARGE_TESTS=1:
// a 10,000-repository tree is 110,000 directories, which takes minutes to
// create and remove on a busy disk.
func TestRepositoriesHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 repositories")
	}
	for _, backend := range []string{"MemFS", "Dir"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "Dir" && os.Getenv("REGSTORE_LARGE_TESTS") != "1" {
				t.Skip("set REGSTORE_LARGE_TESTS=1 to build 10,000 repositories on disk")
			}
			hCheckHeapFlat(t, hBenchStore(t, backend))
		})
	}
}

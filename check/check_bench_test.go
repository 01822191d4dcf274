package check_test

import (
	"context"
	"crypto/sha256"
	"flag"
	"io"
	"io/fs"
	"runtime"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
)

var checkBenchRepos = flag.Int("check-bench-repos", 200, "repositories of the tree BenchmarkCheck generates")

// checkBenchTree is the generated tree of BenchmarkCheck: with the default
// 200 repositories, 200 × 10 manifests × 5 layers of 64 KiB of random
// bytes, half of the layers drawn from a pool shared by every repository,
// two manifests per repository untagged (about 330 MB of blob data).
var checkBenchTree = sync.OnceValues(func() (*regstore.MemFS, error) {
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	if err != nil {
		return nil, err
	}
	_, err = regstoretest.Generate(s, regstoretest.GenerateOptions{
		Repositories:      *checkBenchRepos,
		TagsPerRepo:       8,
		ManifestsPerRepo:  10,
		LayersPerManifest: 5,
		SharedFraction:    0.5,
		UntaggedFraction:  0.2,
		BlobSize:          64 << 10,
		Seed:              1,
	})
	return m, err
})

// BenchmarkCheck runs the integrity check on a large generated tree, in
// memory (MemFS) and on disk (Dir, a copy made with WriteTree, so the
// files are in the page cache after the first pass): links-only, and with
// every blob re-hashed on 4 workers (the default) and on GOMAXPROCS
// workers. The full checks report MB/s over the total blob bytes, next to
// two baselines over the same bytes read the same way: plain sha256 on one
// goroutine, and on GOMAXPROCS goroutines.
//
//	go test -run='^$' -bench=BenchmarkCheck -benchtime=3x
func BenchmarkCheck(b *testing.B) {
	mem, err := checkBenchTree()
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	if err := regstoretest.WriteTree(mem, root); err != nil {
		b.Fatal(err)
	}
	dir, err := regstore.OpenDir(root)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()

	for _, bk := range []struct {
		name string
		fsys fs.FS
	}{{"MemFS", mem}, {"Dir", dir}} {
		s, err := regstore.Open(bk.fsys)
		if err != nil {
			b.Fatal(err)
		}
		var blobs []string
		var total int64
		for d, err := range s.Blobs() {
			if err != nil {
				b.Fatal(err)
			}
			blob, err := s.Blob(d)
			if err != nil {
				b.Fatal(err)
			}
			blobs = append(blobs, blob.Path())
			total += blob.Size()
		}
		run := func(opts check.Options) func(b *testing.B) {
			return func(b *testing.B) {
				if !opts.LinksOnly {
					b.SetBytes(total)
				}
				b.ReportMetric(float64(len(blobs)), "blobs")
				for b.Loop() {
					for p, err := range check.Problems(context.Background(), s, opts) {
						if err != nil {
							b.Fatal(err)
						}
						b.Errorf("problem on a clean tree: %s", p)
					}
				}
			}
		}
		b.Run(bk.name+"/links-only", run(check.Options{LinksOnly: true}))
		b.Run(bk.name+"/full", run(check.Options{}))
		b.Run(bk.name+"/full-gomaxprocs", run(check.Options{Workers: runtime.GOMAXPROCS(0)}))
		b.Run(bk.name+"/sha256-baseline", func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				hashFiles(b, bk.fsys, blobs)
			}
		})
		b.Run(bk.name+"/sha256-baseline-parallel", func(b *testing.B) {
			b.SetBytes(total)
			workers := runtime.GOMAXPROCS(0)
			for b.Loop() {
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						var mine []string
						for i := w; i < len(blobs); i += workers {
							mine = append(mine, blobs[i])
						}
						hashFiles(b, bk.fsys, mine)
					})
				}
				wg.Wait()
			}
		})
	}
}

// hashFiles reads each file once through a 1 MiB buffer into sha256, as
// Blob.Verify does.
func hashFiles(b *testing.B, fsys fs.FS, names []string) {
	buf := make([]byte, 1<<20)
	for _, name := range names {
		f, err := fsys.Open(name)
		if err != nil {
			b.Error(err)
			return
		}
		h := sha256.New()
		_, err = io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			b.Error(err)
			return
		}
		_ = digest.NewDigest(digest.SHA256, h)
	}
}

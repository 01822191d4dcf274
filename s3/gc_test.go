package s3_test

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	regs3 "github.com/regstore/regstore/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// genOptions is the generated tree of the GC tests: repositories of 5
// manifests (one untagged) with 3 layers each, 30% of the layers shared.
// There are 20 repositories (about 1000 objects), or as many as
// REGSTORE_S3_GEN_REPOS says (50 for the README's numbers).
var genOptions = regstoretest.GenerateOptions{
	Repositories: genRepos(), ManifestsPerRepo: 5, LayersPerManifest: 3, TagsPerRepo: 4,
	SharedFraction: 0.3, UntaggedFraction: 0.2, BlobSize: 256, Seed: 9,
}

func genRepos() int {
	if n, err := strconv.Atoi(os.Getenv("REGSTORE_S3_GEN_REPOS")); err == nil && n >= 5 {
		return n
	}
	return 20
}

// genTree is one generated tree, with some garbage (manifests and a
// repository deleted), in three places: memory, a directory laid out as
// the registry's filesystem rootdirectory, and the test bucket under Root.
type genTree struct {
	Mem     *regstore.MemFS
	Dir     string // registry rootdirectory: Dir/docker/registry/v2
	Root    string // registry rootdirectory in the bucket
	Stats   regstoretest.GenerateStats
	Objects int
	Upload  time.Duration
}

var (
	genOnce sync.Once
	gen     *genTree
	genErr  error
	genDir  string
)

// generated makes the tree once per test binary.
func generated(t testing.TB) *genTree {
	t.Helper()
	needServer(t)
	genOnce.Do(func() { gen, genErr = makeGenTree(t) })
	require.NoError(t, genErr, "generate the tree")
	return gen
}

func makeGenTree(t testing.TB) (*genTree, error) {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	if err != nil {
		return nil, err
	}
	st, err := regstoretest.Generate(s, genOptions)
	if err != nil {
		return nil, err
	}
	// Garbage for the default (tagged and untagged kept) collection: an
	// untagged manifest deleted in every fifth repository, and one whole
	// repository deleted.
	for i := 0; i < genOptions.Repositories; i += 5 {
		name := regstoretest.RepositoryName(i)
		r, err := s.Repository(name)
		if err != nil {
			return nil, err
		}
		if err := r.DeleteManifest(st.Untagged[name][0]); err != nil {
			return nil, err
		}
	}
	if err := s.DeleteRepository(regstoretest.RepositoryName(genOptions.Repositories - 1)); err != nil {
		return nil, err
	}

	// The directory outlives any one test: it is removed with the server's.
	genDir, err = os.MkdirTemp("", "regstore-gentree-*")
	if err != nil {
		return nil, err
	}
	if err := regstoretest.WriteTree(mem, genDir); err != nil {
		return nil, err
	}
	g := &genTree{Mem: mem, Dir: genDir, Root: uniqueRoot("generated"), Stats: st}
	f := newFS(t, g.Root)
	start := time.Now()
	g.Objects, err = upload(mem, f, 16)
	g.Upload = time.Since(start)
	return g, err
}

// upload copies every file of src into dst on workers goroutines.
func upload(src fs.FS, dst *regs3.FS, workers int) (int, error) {
	var files []string
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var firstErr error
	ch := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range ch {
				err := func() error {
					b, err := fs.ReadFile(src, p)
					if err != nil {
						return err
					}
					fw, err := dst.Create(p)
					if err != nil {
						return err
					}
					if _, err := fw.Write(b); err != nil {
						return err
					}
					return fw.Commit()
				}()
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, p := range files {
		ch <- p
	}
	close(ch)
	wg.Wait()
	return len(files), firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// stores opens the generated tree on disk and on S3.
func (g *genTree) stores(t testing.TB) (disk, onS3 *regstore.Store, f *regs3.FS) {
	t.Helper()
	d, err := regstore.OpenDir(g.Dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	disk, err = regstore.Open(d)
	require.NoError(t, err)
	f = newFS(t, g.Root)
	onS3, err = regstore.Open(f)
	require.NoError(t, err)
	return disk, onS3, f
}

// TestGCPlanSameOnS3AndDisk: gc.Mark on the tree in the bucket equals gc.Mark
// on the same tree on disk, with and without DeleteUntagged.
func TestGCPlanSameOnS3AndDisk(t *testing.T) {
	g := generated(t)
	t.Logf("tree: %d repositories, %d manifests, %d blobs, %d layer links; %d objects uploaded in %v",
		g.Stats.Repositories, g.Stats.Manifests, g.Stats.Blobs, g.Stats.LayerLinks, g.Objects, g.Upload.Round(time.Millisecond))
	disk, onS3, _ := g.stores(t)
	now := time.Now()
	for _, untagged := range []bool{false, true} {
		opts := gc.Options{Grace: -1, DeleteUntagged: untagged, Now: func() time.Time { return now }}
		want, err := gc.Mark(context.Background(), disk, opts)
		require.NoError(t, err)
		got, err := gc.Mark(context.Background(), onS3, opts)
		require.NoError(t, err)
		assert.Equal(t, want, got, "gc.Mark(DeleteUntagged=%v) on S3 and on disk", untagged)
		assert.NotEmpty(t, got.Blobs, "the plan removes something")
		t.Logf("DeleteUntagged=%v: %d blobs (%d bytes), %d repos with layer links, %d repos with manifests to remove, %d marked",
			untagged, len(got.Blobs), got.Bytes, len(got.LayerLinks), len(got.Manifests), got.Marked)
	}
}

// TestCheckSameOnS3AndDisk: the integrity check finds the same problems on
// the bucket as on disk (as sets: the walk orders differ), and the same
// walk entries.
func TestCheckSameOnS3AndDisk(t *testing.T) {
	g := generated(t)
	disk, onS3, _ := g.stores(t)
	now := time.Now()
	collect := func(s *regstore.Store) []string {
		var out []string
		for p, err := range check.Problems(context.Background(), s, check.Options{Now: func() time.Time { return now }}) {
			require.NoError(t, err)
			out = append(out, string(p.Kind)+" "+p.Path+" "+p.Message)
		}
		slices.Sort(out)
		return out
	}
	want := collect(disk)
	assert.NotEmpty(t, want, "the garbage shows as orphans")
	assert.Equal(t, want, collect(onS3), "Check on S3 and on disk")

	walk := func(s *regstore.Store) []string {
		var out []string
		for e, err := range s.Walk() {
			require.NoError(t, err)
			out = append(out, e.Kind.String()+" "+e.Path+" "+e.Digest.String())
		}
		slices.Sort(out)
		return out
	}
	assert.Equal(t, walk(disk), walk(onS3), "Walk entries")
}

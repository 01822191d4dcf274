package regstore_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDirBatch checks the WriteBatch contract on Dir: staged names are
// invisible until Publish, complete after it, and Close discards what is
// staged.
func TestDirBatch(t *testing.T) {
	dir := t.TempDir()
	d := mgOpenDir(t, dir)
	var bfs regstore.BatchFS = d
	b, err := bfs.Batch()
	require.NoError(t, err)
	defer b.Close()

	backendtest.Put(t, d, "src/file", "linked")
	backendtest.Put(t, d, "src/moved", "moved")
	fw, err := b.Create("a/b/c/file")
	require.NoError(t, err)
	_, err = fw.Write([]byte("content"))
	require.NoError(t, err)
	require.NoError(t, fw.Commit())
	require.NoError(t, b.Link("src/file", "x/y/link"))
	require.NoError(t, b.Rename("src/moved", "x/z/moved"))
	for _, name := range []string{"a/b/c/file", "x/y/link", "x/z/moved"} {
		_, err := fs.Stat(b, name)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Stat(%q) before Publish", name)
	}
	fw, err = b.Create("a/cancelled")
	require.NoError(t, err)
	require.NoError(t, fw.Cancel())

	for _, name := range []string{"/x", "a/../b", "."} {
		_, err := b.Create(name)
		assert.ErrorIs(t, err, fs.ErrInvalid, "Create(%q)", name)
		assert.ErrorIs(t, b.Link("src/file", name), fs.ErrInvalid, "Link(_, %q)", name)
		assert.ErrorIs(t, b.Rename("src/file", name), fs.ErrInvalid, "Rename(_, %q)", name)
	}
	assert.ErrorIs(t, b.Rename("src/missing", "x/missing"), fs.ErrNotExist)
	assert.ErrorIs(t, b.Link("src/missing", "x/missing"), fs.ErrNotExist)

	require.NoError(t, b.Publish())
	for name, want := range map[string]string{"a/b/c/file": "content", "x/y/link": "linked", "x/z/moved": "moved"} {
		got, err := fs.ReadFile(d, name)
		require.NoError(t, err, "ReadFile(%q)", name)
		assert.Equal(t, want, string(got), "ReadFile(%q)", name)
	}
	_, err = fs.Stat(d, "src/moved")
	assert.ErrorIs(t, err, fs.ErrNotExist, "renamed file still at its old name")
	_, err = fs.Stat(d, "a/cancelled")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	require.NoError(t, b.Sync())

	// What is staged and not published is discarded by Close.
	fw, err = b.Create("a/b/c/file")
	require.NoError(t, err)
	_, err = fw.Write([]byte("new content"))
	require.NoError(t, err)
	require.NoError(t, fw.Commit())
	require.NoError(t, b.Link("src/file", "x/y/other"))
	require.NoError(t, b.Close())
	got, err := fs.ReadFile(d, "a/b/c/file")
	require.NoError(t, err)
	assert.Equal(t, "content", string(got), "a staged replacement was published by Close")
	_, err = fs.Stat(d, "x/y/other")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	mgNoTempFiles(t, dir)
	assert.ErrorIs(t, b.Publish(), fs.ErrClosed)
}

// TestDirBatchConcurrent stages from many goroutines into shared and new
// directories.
func TestDirBatchConcurrent(t *testing.T) {
	dir := t.TempDir()
	d := mgOpenDir(t, dir)
	b, err := d.Batch()
	require.NoError(t, err)
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			name := filepath.ToSlash(filepath.Join("shared", string(rune('a'+i%4)), "n", string(rune('a'+i)), "data"))
			fw, err := b.Create(name)
			if !assert.NoError(t, err) {
				return
			}
			fw.Write([]byte(name))
			assert.NoError(t, fw.Commit())
		})
	}
	wg.Wait()
	require.NoError(t, b.Publish())
	require.NoError(t, b.Sync())
	n := 0
	require.NoError(t, fs.WalkDir(d, "shared", func(p string, e fs.DirEntry, err error) error {
		require.NoError(t, err)
		if !e.IsDir() {
			n++
			got, err := fs.ReadFile(d, p)
			require.NoError(t, err)
			assert.Equal(t, p, string(got))
		}
		return nil
	}))
	assert.Equal(t, 32, n)
}

// TestImportBatchedCrashOrder records the steps of a batched import into a
// Dir with hard links (a copying import does not batch) and checks, for a
// crash after every step, under
// the pessimistic model that a name is durable only once a barrier follows
// its publication (while any published name may also have survived), that
// no link that may have survived points at something that may not have: a
// layer link at its data, a revision link at its manifest's data, layer
// links and children's revision links, a tag's links at the revision link
// (and the current link at the index entry). And every name is published
// only after a barrier that follows its staging, so that its content was
// durable before its name.
func TestImportBatchedCrashOrder(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	im := mgPopulate(t, src)
	want := mgState(t, src)
	layoutDir := mgOpenDir(t, filepath.Join(tmp, "layout"))
	_, err := migrate.ExportOCILayout(ctx, src, layoutDir, migrate.ExportOptions{Untagged: true})
	require.NoError(t, err)
	require.NotNil(t, im.index)

	for _, hardLink := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "hardlink"}[hardLink], func(t *testing.T) {
			storeDir := mgOpenDir(t, t.TempDir())
			type event struct{ kind, name string }
			var mu sync.Mutex
			var events []event
			regstore.SetBatchTrace(storeDir, func(kind, name string) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, event{kind, name})
			})
			s := mgStore(t, storeDir)
			dst := mustRepo(t, s, "app")
			_, err := migrate.ImportOCILayout(ctx, dst, layoutDir, migrate.ImportOptions{HardLink: hardLink})
			require.NoError(t, err)
			assert.Equal(t, want, mgState(t, dst))
			mgNoTempFiles(t, storeDir.Name())
			if !hardLink {
				// Copying data publishes name by name, each fsynced.
				assert.Empty(t, events, "a copying import does not batch")
				return
			}

			// What each link needs before it.
			l := s.Layout()
			needs := map[string][]string{}
			for d := range want.Blobs {
				needs[l.LayerLink("app", d)] = []string{l.BlobData(d)}
			}
			for d := range want.Manifests {
				m, err := dst.Manifest(d)
				require.NoError(t, err)
				deps := []string{l.BlobData(d)}
				for b := range m.Blobs() {
					deps = append(deps, l.LayerLink("app", b.Digest))
				}
				for _, c := range m.Children() {
					deps = append(deps, l.RevisionLink("app", c.Digest))
				}
				needs[l.RevisionLink("app", d)] = deps
			}
			for tag, d := range want.Tags {
				needs[l.TagIndexLink("app", tag, d)] = []string{l.RevisionLink("app", d)}
				needs[l.TagCurrent("app", tag)] = []string{l.RevisionLink("app", d), l.TagIndexLink("app", tag, d)}
			}

			staged := map[string]int{} // name: step of its latest staging
			lastBarrier := -1
			published := map[string]int{} // name: step of its publication
			durable := map[string]bool{}
			for i, e := range events {
				switch e.kind {
				case "stage":
					staged[e.name] = i
				case "publish":
					at, ok := staged[e.name]
					require.True(t, ok, "step %d: %s published unstaged", i, e.name)
					assert.Less(t, at, lastBarrier, "step %d: %s published with no barrier since it was staged", i, e.name)
					published[e.name] = i
					// A crash now: e.name may survive; what it needs must.
					for _, dep := range needs[e.name] {
						assert.True(t, durable[dep], "step %d: %s may survive a crash without %s", i, e.name, dep)
					}
				case "barrier":
					lastBarrier = i
					for name := range published {
						durable[name] = true
					}
				}
			}
			require.NotEmpty(t, events)
			assert.Equal(t, "barrier", events[len(events)-1].kind, "the import ends with a barrier")
			for name := range needs {
				assert.True(t, durable[name], "%s not durable at the end", name)
			}
			n := 0
			for _, e := range events {
				if e.kind == "barrier" {
					n++
				}
			}
			t.Logf("%d names published with %d barriers", len(published), n)
		})
	}
}

// TestImportBatchedMatchesMemFS imports the same layout into a Dir (in
// batches) and a MemFS (name by name): the trees are the same.
func TestImportBatchedMatchesMemFS(t *testing.T) {
	ctx := context.Background()
	src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	mgPopulate(t, src)
	layout := regstore.NewMemFS()
	_, err := migrate.ExportOCILayout(ctx, src, layout, migrate.ExportOptions{Untagged: true})
	require.NoError(t, err)

	mem := regstore.NewMemFS()
	_, err = migrate.ImportOCILayout(ctx, mustRepo(t, mgStore(t, mem), "app"), layout, migrate.ImportOptions{})
	require.NoError(t, err)
	dir := t.TempDir()
	d := mgOpenDir(t, dir)
	_, err = migrate.ImportOCILayout(ctx, mustRepo(t, mgStore(t, d), "app"), layout, migrate.ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, backendtest.Listing(t, mem, "."), backendtest.Listing(t, d, "."))

	// A re-run finds everything in place and publishes nothing.
	var steps []string
	regstore.SetBatchTrace(d, func(kind, name string) {
		if kind != "barrier" {
			steps = append(steps, kind+" "+name)
		}
	})
	res, err := migrate.ImportOCILayout(ctx, mustRepo(t, mgStore(t, d), "app"), layout, migrate.ImportOptions{})
	require.NoError(t, err)
	assert.Empty(t, steps)
	assert.Zero(t, res.Stats.Blobs+res.Stats.Manifests+res.Stats.Tags)
}

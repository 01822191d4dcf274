package migrate_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgSourceStore fills a store with three repositories: mgPopulate's
// team/app; library/alpine sharing a layer with it and holding a blob
// linked under a sha512 alias and one linked but unreferenced; and
// legacy/old with a schema1 manifest (written as registry 2.x stored it).
func mgSourceStore(t *testing.T, w regstore.WriteFS) *regstore.Store {
	t.Helper()
	s := mgStore(t, w)
	mgPopulate(t, mustRepo(t, s, "team/app"))
	alpine := mustRepo(t, s, "library/alpine")
	regstoretest.Push(t, alpine, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 300), regstoretest.RandomLayer(20, 5000)}}, "3.20", "latest")
	alias := []byte("content linked by its sha512 digest")
	sum := sha512.Sum512(alias)
	_, err := alpine.PutBlob(bytes.NewReader(alias), digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:])), int64(len(alias)))
	require.NoError(t, err)
	_, err = alpine.PutBlob(strings.NewReader("uploaded, never used"), "", -1)
	require.NoError(t, err)

	old := mustRepo(t, s, "legacy/old")
	layer, err := old.PutBlob(strings.NewReader("schema1 layer"), "", -1)
	require.NoError(t, err)
	s1 := []byte(fmt.Sprintf(`{"schemaVersion":1,"name":"legacy/old","tag":"v0","architecture":"amd64","fsLayers":[{"blobSum":%q}],"history":[{"v1Compatibility":"{}"}],"signatures":[]}`, layer.Digest()))
	b, err := s.PutBlob(bytes.NewReader(s1), "", -1)
	require.NoError(t, err)
	mgWrite(t, w, s.Layout().RevisionLink("legacy/old", b.Digest()), []byte(b.Digest().String()))
	mgWrite(t, w, s.Layout().TagIndexLink("legacy/old", "v0", b.Digest()), []byte(b.Digest().String()))
	mgWrite(t, w, s.Layout().TagCurrent("legacy/old", "v0"), []byte(b.Digest().String()))
	return s
}

// mgStoreState is every repository's mgState.
func mgStoreState(t *testing.T, s *regstore.Store) map[string]mgRepoState {
	t.Helper()
	out := map[string]mgRepoState{}
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		out[r.Name()] = mgState(t, r)
	}
	return out
}

// mgConsistent checks what a registry needs of a tree at any moment: every
// tag resolves, and every manifest's blobs and children are in its
// repository.
func mgConsistent(t *testing.T, s *regstore.Store) {
	t.Helper()
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		for tg, err := range r.Tags() {
			require.NoError(t, err)
			if _, err := tg.Digest(); errors.Is(err, fs.ErrNotExist) {
				continue // index entry written, current link not yet: not a tag yet
			}
			_, err := tg.Resolve()
			assert.NoError(t, err, "tag %s published before its manifest", tg)
		}
		for d, err := range r.Manifests() {
			require.NoError(t, err)
			m, err := r.Manifest(d)
			require.NoError(t, err)
			for b := range m.Blobs() {
				_, err := r.Blob(b.Digest)
				assert.NoError(t, err, "manifest %s published before its blob %s", d, b.Digest)
			}
			for _, c := range m.Children() {
				_, err := r.Manifest(c.Digest)
				assert.NoError(t, err, "index %s published before its child %s", d, c.Digest)
			}
		}
	}
}

// TestCopyWholeStore copies a store between every pair of backends, and
// from a read-only one.
func TestCopyWholeStore(t *testing.T) {
	ctx := context.Background()
	for _, from := range mgBackends {
		for _, to := range mgBackends {
			t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
				src := mgSourceStore(t, from.new(t))
				want := mgStoreState(t, src)
				dst := mgStore(t, to.new(t))
				var calls int
				var seen []migrate.CopyStats
				stats, err := migrate.Copy(ctx, dst, src, migrate.CopyOptions{Progress: func(s migrate.CopyStats) {
					calls++
					seen = append(seen, s)
				}})
				require.NoError(t, err)
				// The totals are known from the first call on, and never change.
				require.NotEmpty(t, seen)
				for i, s := range seen {
					assert.Equal(t, stats.TotalBlobs, s.TotalBlobs, "progress call %d", i)
					assert.Equal(t, stats.TotalBytes, s.TotalBytes, "progress call %d", i)
				}
				assert.Equal(t, want, mgStoreState(t, dst))
				mgConsistent(t, dst)
				srcCat, err := src.Catalog(0, "")
				require.NoError(t, err)
				dstCat, err := dst.Catalog(0, "")
				require.NoError(t, err)
				assert.Equal(t, srcCat, dstCat)
				assert.Equal(t, 3, stats.Repositories)
				// Skipped: the layer team/app and library/alpine share, in the
				// second repository; the sha512 alias, whose data its sha256
				// link brought.
				assert.Equal(t, 2, stats.BlobsSkipped)
				assert.Equal(t, stats.TotalBlobs, stats.Blobs+stats.BlobsSkipped)
				assert.Equal(t, stats.TotalBytes, stats.Bytes+stats.BytesSkipped)
				manifests, tags := 0, 0
				for _, st := range want {
					manifests += len(st.Manifests)
					tags += len(st.Tags)
				}
				assert.Equal(t, 9, manifests)
				assert.Equal(t, manifests, stats.Manifests)
				assert.Equal(t, tags, stats.Tags)
				assert.NotZero(t, calls, "progress calls")

				// A re-run copies nothing.
				stats, err = migrate.Copy(ctx, dst, src, migrate.CopyOptions{})
				require.NoError(t, err)
				assert.Zero(t, stats.Blobs)
				assert.Zero(t, stats.Manifests)
				assert.Zero(t, stats.Tags, "tags in place are not set again")
				assert.Equal(t, stats.TotalBlobs, stats.BlobsSkipped)
				assert.Equal(t, manifests, stats.ManifestsSkipped)
				assert.Equal(t, want, mgStoreState(t, dst))
			})
		}
	}
	t.Run("read-only source", func(t *testing.T) {
		dir := t.TempDir()
		w := mgOpenDir(t, dir)
		want := mgStoreState(t, mgSourceStore(t, w))
		src := mgStore(t, os.DirFS(dir))
		dst := mgStore(t, regstore.NewMemFS())
		_, err := migrate.Copy(ctx, dst, src, migrate.CopyOptions{Workers: 1})
		require.NoError(t, err)
		assert.Equal(t, want, mgStoreState(t, dst))

		_, err = migrate.Copy(ctx, src, dst, migrate.CopyOptions{})
		assert.ErrorIs(t, err, errors.ErrUnsupported)
	})
}

// TestCopyFiltered copies chosen repositories and tags.
func TestCopyFiltered(t *testing.T) {
	ctx := context.Background()
	src := mgSourceStore(t, regstore.NewMemFS())
	want := mgStoreState(t, src)
	app := mustRepo(t, src, "team/app")
	v1tag, _ := app.Tag("v1")
	v1m, err := v1tag.Resolve()
	require.NoError(t, err)

	dst := mgStore(t, regstore.NewMemFS())
	_, err = migrate.Copy(ctx, dst, src, migrate.CopyOptions{
		Repositories: []string{"library/alpine"},
		Tags:         map[string][]string{"team/app": {"v1"}, "library/alpine": {"3.20"}},
	})
	require.NoError(t, err)
	got := mgStoreState(t, dst)
	assert.Equal(t, []string{"library/alpine", "team/app"}, slices.Sorted(mapKeys(got)))
	assert.Equal(t, want["library/alpine"], got["library/alpine"], "a repository in both is copied whole")
	// team/app: the v1 tag only (not "stable", though it names the same
	// manifest), with the manifest's referrer.
	var referrer digest.Digest
	for d, raw := range want["team/app"].Manifests {
		if strings.Contains(raw, `"subject"`) {
			referrer = d
		}
	}
	assert.Equal(t, map[string]digest.Digest{"v1": v1m.Digest()}, got["team/app"].Tags)
	assert.ElementsMatch(t, []digest.Digest{v1m.Digest(), referrer}, slices.Collect(mapKeys(got["team/app"].Manifests)))
	mgConsistent(t, dst)

	for _, tc := range []struct {
		name string
		opts migrate.CopyOptions
		want error
	}{
		{"missing repository", migrate.CopyOptions{Repositories: []string{"nope"}}, fs.ErrNotExist},
		{"missing tag", migrate.CopyOptions{Tags: map[string][]string{"team/app": {"nope"}}}, fs.ErrNotExist},
		{"bad name", migrate.CopyOptions{Repositories: []string{"Bad"}}, regstore.ErrInvalidName},
		{"bad tag", migrate.CopyOptions{Tags: map[string][]string{"team/app": {"-x"}}}, regstore.ErrInvalidTag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.Copy(ctx, mgStore(t, regstore.NewMemFS()), src, tc.opts)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestCopyResume interrupts a copy part-way (at every point, in turn),
// checks that what is published is consistent, and completes it with a
// re-run that copies only what is missing.
func TestCopyResume(t *testing.T) {
	src := mgSourceStore(t, regstore.NewMemFS())
	want := mgStoreState(t, src)
	full, err := migrate.Copy(context.Background(), mgStore(t, regstore.NewMemFS()), src, migrate.CopyOptions{})
	require.NoError(t, err)
	steps := full.Blobs + full.Manifests + full.Tags + full.Repositories
	for stop := 1; stop < steps; stop += 3 {
		t.Run(fmt.Sprint(stop), func(t *testing.T) {
			dst := mgStore(t, regstore.NewMemFS())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			first, err := migrate.Copy(ctx, dst, src, migrate.CopyOptions{Workers: 1, Progress: func(s migrate.CopyStats) {
				if n++; n == stop {
					cancel()
				}
			}})
			require.ErrorIs(t, err, context.Canceled)
			mgConsistent(t, dst)
			stats, err := migrate.Copy(context.Background(), dst, src, migrate.CopyOptions{})
			require.NoError(t, err)
			assert.Equal(t, want, mgStoreState(t, dst))
			assert.Equal(t, full.Blobs, first.Blobs+stats.Blobs, "the re-run copies only what is missing")
		})
	}
}

// TestCopyCorruptSource copies a store one of whose layers does not match
// its digest: the copy fails, and nothing that refers to the layer is
// published.
func TestCopyCorruptSource(t *testing.T) {
	ctx := context.Background()
	for _, bk := range mgBackends {
		for _, hardLink := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hardlink=%v", bk.name, hardLink), func(t *testing.T) {
				w := bk.new(t)
				src := mgSourceStore(t, w)
				alpine := mustRepo(t, src, "library/alpine")
				tg, _ := alpine.Tag("3.20")
				m, err := tg.Resolve()
				require.NoError(t, err)
				victim := m.Layers()[1].Digest
				p := src.Layout().BlobData(victim)
				data := mgRead(t, w, p)
				data[len(data)/2] ^= 0x55
				if d, ok := w.(*regstore.Dir); ok {
					// Replace the file (a hard-linked copy must not change).
					require.NoError(t, os.Remove(filepath.Join(d.Name(), p)))
					require.NoError(t, os.WriteFile(filepath.Join(d.Name(), p), data, 0o644))
				} else {
					mgWrite(t, w, p, data)
				}

				var dst *regstore.Store
				if d, ok := w.(*regstore.Dir); ok && hardLink {
					dst = mgStore(t, mgOpenDir(t, filepath.Join(filepath.Dir(d.Name()), "dst")))
				} else {
					dst = mgStore(t, bk.new(t))
				}
				_, err = migrate.Copy(ctx, dst, src, migrate.CopyOptions{Repositories: []string{"library/alpine"}, HardLink: hardLink})
				require.ErrorIs(t, err, regstore.ErrDigestMismatch)
				mgConsistent(t, dst)
				_, err = dst.Blob(victim)
				assert.ErrorIs(t, err, fs.ErrNotExist, "corrupt blob published")
				r := mustRepo(t, dst, "library/alpine")
				_, err = r.Manifest(m.Digest())
				assert.ErrorIs(t, err, fs.ErrNotExist, "manifest of the corrupt blob published")
				for tg, err := range r.Tags() {
					require.NoError(t, err)
					d, err := tg.Digest()
					require.NoError(t, err)
					assert.NotEqual(t, m.Digest(), d, "tag %s of the corrupt image set", tg.Name())
				}
			})
		}
	}
}

// TestCopyHardLink copies between two Dirs on one filesystem, and between
// two layout roots of one MemFS, with hard links.
func TestCopyHardLink(t *testing.T) {
	ctx := context.Background()
	t.Run("Dir", func(t *testing.T) {
		tmp := t.TempDir()
		srcDir := mgOpenDir(t, filepath.Join(tmp, "src"))
		src := mgSourceStore(t, srcDir)
		want := mgStoreState(t, src)
		dstDir := mgOpenDir(t, filepath.Join(tmp, "dst"))
		dst := mgStore(t, dstDir)
		stats, err := migrate.Copy(ctx, dst, src, migrate.CopyOptions{HardLink: true})
		require.NoError(t, err)
		assert.Equal(t, want, mgStoreState(t, dst))
		assert.Zero(t, stats.Blobs, "blobs copied")
		assert.Equal(t, 2, stats.BlobsSkipped, "the shared layer and the sha512 alias")
		assert.Equal(t, stats.TotalBlobs-2, stats.BlobsLinked, "every other blob is linked")
		for repo, st := range want {
			for b := range st.Blobs {
				if b.Algorithm() != digest.SHA256 {
					continue // an alias link: the data is copied
				}
				a, err := os.Stat(filepath.Join(srcDir.Name(), src.Layout().BlobData(b)))
				require.NoError(t, err)
				c, err := os.Stat(filepath.Join(dstDir.Name(), dst.Layout().BlobData(b)))
				require.NoError(t, err)
				assert.True(t, os.SameFile(a, c), "blob %s of %s linked", b, repo)
			}
		}
		mgNoTempFiles(t, tmp)

		// Another filesystem: falls back to copying (/dev/shm is tmpfs
		// where it exists).
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			shm, err := os.MkdirTemp("/dev/shm", "regstore-test-")
			if err == nil {
				t.Cleanup(func() { os.RemoveAll(shm) })
				other := mgStore(t, mgOpenDir(t, shm))
				stats, err := migrate.Copy(ctx, other, src, migrate.CopyOptions{HardLink: true, Workers: 2})
				require.NoError(t, err)
				assert.Equal(t, want, mgStoreState(t, other))
				assert.Zero(t, stats.BlobsLinked)
				mgNoTempFiles(t, shm)
			}
		}
	})
	t.Run("MemFS", func(t *testing.T) {
		mem := regstore.NewMemFS()
		src := mgSourceStore(t, mem)
		want := mgStoreState(t, src)
		dst, err := regstore.Open(mem, regstore.WithLayoutRoot("copy/v2"), regstore.Create())
		require.NoError(t, err)
		stats, err := migrate.Copy(ctx, dst, src, migrate.CopyOptions{HardLink: true, TrustDigests: true})
		require.NoError(t, err)
		assert.Equal(t, want, mgStoreState(t, dst))
		assert.Equal(t, stats.TotalBlobs-2, stats.BlobsLinked)
	})
}

// TestCopyConcurrentReaders copies while readers walk the target: they
// never see a dangling pointer.
func TestCopyConcurrentReaders(t *testing.T) {
	src := mgSourceStore(t, regstore.NewMemFS())
	dst := mgStore(t, regstore.NewMemFS())
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				mgConsistent(t, dst)
			}
		}
	})
	_, err := migrate.Copy(context.Background(), dst, src, migrate.CopyOptions{Workers: 8})
	close(done)
	wg.Wait()
	require.NoError(t, err)
}

// ExampleCopy copies one repository between two stores and shows that a
// second run copies nothing.
func ExampleCopy() {
	src, _ := regstore.Open(regstore.NewMemFS())
	repo, _ := src.Repository("team/app")
	if _, err := regstoretest.PushImage(repo, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 100)}}, "v1"); err != nil {
		fmt.Println(err)
		return
	}
	dst, _ := regstore.Open(regstore.NewMemFS())
	for range 2 {
		stats, err := migrate.Copy(context.Background(), dst, src, migrate.CopyOptions{})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("copied %d blobs, skipped %d; published %d manifests; set %d tags\n",
			stats.Blobs, stats.BlobsSkipped, stats.Manifests, stats.Tags)
	}
	// Output:
	// copied 2 blobs, skipped 0; published 1 manifests; set 1 tags
	// copied 0 blobs, skipped 2; published 0 manifests; set 0 tags
}

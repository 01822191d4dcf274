package migrate_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgListing is every file of fsys with its size.
func mgListing(t *testing.T, fsys fs.FS) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if !d.IsDir() {
			fi, err := d.Info()
			require.NoError(t, err)
			out[p] = fi.Size()
		}
		return nil
	}))
	return out
}

// mgCheckClean asserts that check finds no problem in s.
func mgCheckClean(t *testing.T, s *regstore.Store) {
	t.Helper()
	for p, err := range check.Problems(context.Background(), s, check.Options{}) {
		require.NoError(t, err)
		t.Errorf("check after import: %s", p)
	}
}

// mgEmptyDir asserts that dir (the spool directory's parent) is empty.
func mgEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "temporary files left in the spool directory")
}

// TestImportDockerArchiveBoundedMemory: an archive with 20,000 small
// files besides its image (each would have been held in memory until the
// end) imports with a heap that stays small: sampled HeapInuse while it
// runs stays under 64 MiB, where holding the entries takes 20,000 × 16 KiB
// = 312 MiB.
func TestImportDockerArchiveBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 entries")
	}
	layer := mgLayerTar(t, map[string]string{"etc/hello": "hello\n"})
	img := mgDockerImage{config: mgConfig(t, "amd64", layer), layers: [][]byte{layer}, repoTags: []string{"team/app:v1"}}
	base := mgLegacyArchive(t, img)
	// The archive: 20,000 junk entries of 16 KiB each (distinct content:
	// the spool keeps equal content once), then the image.
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	tw := tar.NewWriter(zw)
	junk := make([]byte, 16<<10)
	for i := range 20_000 {
		junk[0], junk[1], junk[2] = byte(i), byte(i>>8), byte(i>>16)
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "junk/" + digest.FromBytes(junk).Encoded()[:16], Size: int64(len(junk)), Mode: 0o644}))
		_, err := tw.Write(junk)
		require.NoError(t, err)
	}
	tr := tar.NewReader(bytes.NewReader(base))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.NoError(t, tw.WriteHeader(hdr))
		_, err = io.Copy(tw, tr)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	archive := zbuf.Bytes()
	t.Logf("archive: %d bytes compressed", len(archive))

	s := mgStore(t, regstore.NewMemFS())
	r := mustRepo(t, s, "team/app")
	spool := t.TempDir()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	res, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(archive), migrate.ImportOptions{SpoolDir: spool})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Len(t, res.Tags, 1)
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, peak %d MiB during (growth %d MiB)", before.HeapInuse>>20, peak.Load()>>20, growth>>20)
	assert.Less(t, growth, int64(64<<20), "heap growth during the import")
	mgEmptyDir(t, spool)
	mgCheckClean(t, s)
}

// TestImportDockerArchiveFailureLeavesNothing: an archive with a large
// layer and an invalid manifest.json fails and leaves the store's files
// exactly as they were (and no temporary files).
func TestImportDockerArchiveFailureLeavesNothing(t *testing.T) {
	big := mgLayerTar(t, map[string]string{"data/blob": mgRandom(9, 2<<20)})
	for _, bad := range []string{`{"not": "a list"}`, `[{"Config": "missing.json", "Layers": ["big/layer.tar"], "RepoTags": ["team/app:v1"]}]`} {
		a := newMGTar()
		a.file(t, "big/layer.tar", big)
		a.file(t, "manifest.json", []byte(bad))
		archive := a.bytes(t)
		for _, bk := range mgBackends {
			t.Run(bk.name, func(t *testing.T) {
				w := bk.new(t)
				s := mgStore(t, w)
				r := mustRepo(t, s, "team/app")
				before := mgListing(t, w)
				spool := t.TempDir()
				_, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(archive), migrate.ImportOptions{SpoolDir: spool})
				require.Error(t, err)
				assert.Equal(t, before, mgListing(t, w), "the store's files after a failed import")
				mgEmptyDir(t, spool)
			})
		}
	}
}

// TestImportDockerArchiveGzipDefault: by default uncompressed layers are
// stored gzip-compressed (media type and content), deterministically (the
// same archive gives the same digests in another store), with a fixed
// header (no name, no time, OS 255), and check is clean.
func TestImportDockerArchiveGzipDefault(t *testing.T) {
	l1 := mgLayerTar(t, map[string]string{"etc/hello": "hello\n"})
	l2 := mgLayerTar(t, map[string]string{"data/blob": mgRandom(3, 300<<10)})
	img := mgDockerImage{config: mgConfig(t, "amd64", l1, l2), layers: [][]byte{l1, l2}, repoTags: []string{"team/app:v1"}}
	archive := mgLegacyArchive(t, img)
	var first []digest.Digest
	for i := range 2 {
		s := mgStore(t, regstore.NewMemFS())
		r := mustRepo(t, s, "team/app")
		res, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(archive), migrate.ImportOptions{Workers: 1 + i*3})
		require.NoError(t, err)
		tag, err := r.Tag("v1")
		require.NoError(t, err)
		m, err := tag.Resolve()
		require.NoError(t, err)
		var ds []digest.Digest
		for j, l := range m.Layers() {
			assert.Equal(t, regstore.MediaTypeDockerLayer, l.MediaType)
			raw := mgReadBlob(t, r, l.Digest)
			require.Greater(t, len(raw), 10)
			assert.Equal(t, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, []byte(raw[:8]), "gzip header: no flags, no time")
			assert.Equal(t, byte(255), raw[9], "gzip header: OS unknown")
			zr, err := gzip.NewReader(bytes.NewReader([]byte(raw)))
			require.NoError(t, err)
			plain, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Equal(t, img.layers[j], plain)
			ds = append(ds, l.Digest)
		}
		ds = append(ds, res.Manifests[0].Digest)
		if i == 0 {
			first = ds
		} else {
			assert.Equal(t, first, ds, "same archive, same digests (with 1 and 4 workers)")
		}
		mgCheckClean(t, s)
		// Nothing but what the manifest references.
		n := 0
		for range s.BlobFiles() {
			n++
		}
		assert.Equal(t, 4, n, "blobs: config, two layers, manifest")
	}
}

// mgSkopeoArchive writes an archive as skopeo's docker-archive transport
// does: layers as <hex>.tar at the top, a symbolic link <hex>/layer.tar,
// config <hex>.json.
func mgSkopeoArchive(t *testing.T, img mgDockerImage) []byte {
	a := newMGTar()
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	e := entry{Config: digest.FromBytes(img.config).Encoded() + ".json", RepoTags: img.repoTags}
	for _, l := range img.layers {
		hex := digest.FromBytes(l).Encoded()
		a.file(t, hex+".tar", l)
		a.dir(t, hex)
		a.symlink(t, hex+"/layer.tar", "../"+hex+".tar")
		e.Layers = append(e.Layers, hex+".tar")
	}
	a.file(t, e.Config, img.config)
	b, err := json.Marshal([]entry{e})
	require.NoError(t, err)
	a.file(t, "manifest.json", b)
	return a.bytes(t)
}

// TestImportDockerArchiveSkopeoNames: layers named <hex>.tar (skopeo's
// docker-archive) leave no uncompressed orphan: check is clean and the
// store holds only what the manifest references, compressed or not.
func TestImportDockerArchiveSkopeoNames(t *testing.T) {
	l1 := mgLayerTar(t, map[string]string{"etc/hello": "hello\n"})
	l2 := mgLayerTar(t, map[string]string{"data/blob": mgRandom(4, 200<<10)})
	img := mgDockerImage{config: mgConfig(t, "amd64", l1, l2), layers: [][]byte{l1, l2}, repoTags: []string{"team/app:v1"}}
	archive := mgSkopeoArchive(t, img)
	for _, unc := range []bool{false, true} {
		s := mgStore(t, regstore.NewMemFS())
		r := mustRepo(t, s, "team/app")
		_, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(archive), migrate.ImportOptions{UncompressedLayers: unc})
		require.NoError(t, err)
		mgCheckClean(t, s)
		var blobs []string
		for b, err := range s.BlobFiles() {
			require.NoError(t, err)
			blobs = append(blobs, b.Digest.String())
		}
		sort.Strings(blobs)
		assert.Len(t, blobs, 4, "uncompressed=%v: config, two layers, manifest: %v", unc, blobs)
		if !unc {
			assert.NotContains(t, blobs, digest.FromBytes(l2).String(), "no uncompressed copy of a compressed layer")
		}
	}
}

// TestImportDockerArchiveNothingSelected: an archive whose images are all
// named for other repositories (several images: the lone-image rule does
// not apply) writes nothing and fails with ErrNothingImported, unless
// AllowEmpty; a lone image named for another repository keeps its tag.
func TestImportDockerArchiveNothingSelected(t *testing.T) {
	l1 := mgLayerTar(t, map[string]string{"a": "1"})
	l2 := mgLayerTar(t, map[string]string{"data/blob": mgRandom(5, 200<<10)})
	a := mgDockerImage{config: mgConfig(t, "amd64", l1), layers: [][]byte{l1}, repoTags: []string{"other/one:v1"}}
	b := mgDockerImage{config: mgConfig(t, "arm64", l2), layers: [][]byte{l2}, repoTags: []string{"other/two:v2"}}
	two := mgLegacyArchive(t, a, b)
	for _, bk := range mgBackends {
		t.Run(bk.name, func(t *testing.T) {
			w := bk.new(t)
			s := mgStore(t, w)
			r := mustRepo(t, s, "team/app")
			before := mgListing(t, w)
			_, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(two), migrate.ImportOptions{})
			require.ErrorIs(t, err, migrate.ErrNothingImported)
			assert.ErrorIs(t, err, fs.ErrNotExist)
			assert.Contains(t, err.Error(), "other/one:v1")
			assert.Equal(t, before, mgListing(t, w), "nothing written")
			_, err = migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(two), migrate.ImportOptions{Tags: map[string]string{"nosuch:1": "t"}})
			require.ErrorIs(t, err, migrate.ErrNothingImported)
			res, err := migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(two), migrate.ImportOptions{AllowEmpty: true})
			require.NoError(t, err)
			assert.Empty(t, res.Manifests)
			assert.Equal(t, []string{"other/one:v1", "other/two:v2"}, res.Skipped)
			assert.Equal(t, before, mgListing(t, w), "nothing written")

			// One image: imported under its own tag, as docker load keeps it.
			res, err = migrate.ImportDockerArchive(context.Background(), r, bytes.NewReader(mgLegacyArchive(t, b)), migrate.ImportOptions{})
			require.NoError(t, err)
			require.Len(t, res.Tags, 1)
			assert.Equal(t, "v2", res.Tags[0].Tag)
			assert.Equal(t, "other/two:v2", res.Tags[0].RefName)
			mgCheckClean(t, s)
		})
	}
}

// TestImportOCINothingSelected: import-oci with a name the layout does not
// have fails with ErrNothingImported and writes nothing.
func TestImportOCINothingSelected(t *testing.T) {
	src := mgStore(t, regstore.NewMemFS())
	sr := mustRepo(t, src, "team/app")
	mgPopulate(t, sr)
	layout := regstore.NewMemFS()
	_, err := migrate.ExportOCILayout(context.Background(), sr, layout, migrate.ExportOptions{})
	require.NoError(t, err)
	w := regstore.NewMemFS()
	s := mgStore(t, w)
	r := mustRepo(t, s, "team/app")
	_, err = migrate.ImportOCILayout(context.Background(), r, layout, migrate.ImportOptions{Tags: map[string]string{"nosuch": "t"}})
	require.ErrorIs(t, err, migrate.ErrNothingImported)
	assert.Empty(t, mgListing(t, w))
	_, err = migrate.ImportOCILayout(context.Background(), r, layout, migrate.ImportOptions{Tags: map[string]string{"nosuch": "t"}, AllowEmpty: true})
	require.NoError(t, err)
}

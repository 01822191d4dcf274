package migrate_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgTar builds a tar archive entry by entry.
type mgTar struct {
	buf bytes.Buffer
	tw  *tar.Writer
}

func newMGTar() *mgTar {
	a := &mgTar{}
	a.tw = tar.NewWriter(&a.buf)
	return a
}

var mgMTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func (a *mgTar) file(t *testing.T, name string, data []byte) {
	t.Helper()
	require.NoError(t, a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mgMTime}))
	_, err := a.tw.Write(data)
	require.NoError(t, err)
}

func (a *mgTar) dir(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: mgMTime}))
}

func (a *mgTar) symlink(t *testing.T, name, target string) {
	t.Helper()
	require.NoError(t, a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mgMTime}))
}

func (a *mgTar) bytes(t *testing.T) []byte {
	t.Helper()
	require.NoError(t, a.tw.Close())
	return a.buf.Bytes()
}

// mgLayerTar is an uncompressed layer: a tar of files, deterministic.
func mgLayerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	a := newMGTar()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a.file(t, n, []byte(files[n]))
	}
	return a.bytes(t)
}

func mgRandom(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}

func mgGzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return out.Bytes()
}

// mgDockerImage is one image of a legacy docker save archive.
type mgDockerImage struct {
	config   []byte
	layers   [][]byte // uncompressed layer tars, in order
	repoTags []string
}

func mgConfig(t *testing.T, arch string, layers ...[]byte) []byte {
	t.Helper()
	cfg := map[string]any{
		"architecture": arch, "os": "linux", "created": "2020-01-01T00:00:00Z",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{}},
	}
	var ids []digest.Digest
	for _, l := range layers {
		ids = append(ids, digest.FromBytes(l))
	}
	if ids != nil {
		cfg["rootfs"].(map[string]any)["diff_ids"] = ids
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	return b
}

// mgLegacyArchive writes a docker save archive in the legacy form docker
// 1.10 to 24 writes: one directory per layer (VERSION, json, layer.tar; a
// layer equal to an earlier one is a symbolic link to its layer.tar), the
// config as <hex>.json, manifest.json and repositories.
func mgLegacyArchive(t *testing.T, imgs ...mgDockerImage) []byte {
	t.Helper()
	a := newMGTar()
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	repos := map[string]map[string]string{}
	written := map[digest.Digest]string{}
	for _, img := range imgs {
		e := entry{Config: digest.FromBytes(img.config).Encoded() + ".json", RepoTags: img.repoTags}
		parent := ""
		for _, l := range img.layers {
			// The v1 layer id chains the parent, so a repeated layer gets a
			// new directory whose layer.tar links to the first.
			id := digest.FromString(parent + digest.FromBytes(l).String()).Encoded()
			parent = id
			a.dir(t, id)
			a.file(t, id+"/VERSION", []byte("1.0"))
			a.file(t, id+"/json", []byte(fmt.Sprintf(`{"id":%q,"created":"2020-01-01T00:00:00Z"}`, id)))
			if first, ok := written[digest.FromBytes(l)]; ok {
				a.symlink(t, id+"/layer.tar", "../"+first+"/layer.tar")
			} else {
				a.file(t, id+"/layer.tar", l)
				written[digest.FromBytes(l)] = id
			}
			e.Layers = append(e.Layers, id+"/layer.tar")
		}
		a.file(t, e.Config, img.config)
		manifest = append(manifest, e)
		for _, rt := range img.repoTags {
			i := strings.LastIndex(rt, ":")
			if repos[rt[:i]] == nil {
				repos[rt[:i]] = map[string]string{}
			}
			repos[rt[:i]][rt[i+1:]] = parent
		}
	}
	mj, err := json.Marshal(manifest)
	require.NoError(t, err)
	a.file(t, "manifest.json", mj)
	rj, err := json.Marshal(repos)
	require.NoError(t, err)
	a.file(t, "repositories", rj)
	return a.bytes(t)
}

// TestImportDockerArchiveLegacy imports a legacy docker save archive built
// from known layers and checks the image: Docker schema2, config verbatim,
// layers uncompressed with digests equal to the config's diff_ids.
func TestImportDockerArchiveLegacy(t *testing.T) {
	ctx := context.Background()
	small := mgLayerTar(t, map[string]string{"etc/hello": "hello\n", "bin/app": "#!/bin/sh\necho hi\n"})
	big := mgLayerTar(t, map[string]string{"data/blob": mgRandom(7, 200<<10)}) // stored while the archive streams
	other := mgLayerTar(t, map[string]string{"other": "x"})
	app := mgDockerImage{config: mgConfig(t, "amd64", small, big, small), layers: [][]byte{small, big, small},
		repoTags: []string{"team/app:v1", "team/app:latest", "docker.io/team/app:hub", "busybox:1"}}
	bb := mgDockerImage{config: mgConfig(t, "arm64", other), layers: [][]byte{other}, repoTags: []string{"busybox:1.36"}}
	archive := mgLegacyArchive(t, app, bb)

	for _, bk := range mgBackends {
		for _, compressed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzipped-archive=%v", bk.name, compressed), func(t *testing.T) {
				in := archive
				if compressed {
					in = mgGzip(t, archive)
				}
				r := mustRepo(t, mgStore(t, bk.new(t)), "team/app")
				unc := migrate.ImportOptions{UncompressedLayers: true}
				res, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(in), unc)
				require.NoError(t, err)
				require.Len(t, res.Manifests, 1)
				assert.Equal(t, []string{"busybox:1", "busybox:1.36"}, res.Skipped)
				var tags []string
				for _, tg := range res.Tags {
					tags = append(tags, tg.Tag)
				}
				assert.Equal(t, []string{"v1", "latest", "hub"}, tags)

				tg, err := r.Tag("v1")
				require.NoError(t, err)
				m, err := tg.Resolve()
				require.NoError(t, err)
				assert.Equal(t, regstore.MediaTypeDockerManifest, m.MediaType())
				assert.Equal(t, res.Manifests[0].Digest, m.Digest())
				cfg, ok := m.Config()
				require.True(t, ok)
				assert.Equal(t, regstore.MediaTypeDockerConfig, cfg.MediaType)
				assert.Equal(t, digest.FromBytes(app.config), cfg.Digest, "config stored verbatim: the image ID is kept")
				assert.Equal(t, string(app.config), mgReadBlob(t, r, cfg.Digest))

				var conf v1.Image
				require.NoError(t, json.Unmarshal([]byte(mgReadBlob(t, r, cfg.Digest)), &conf))
				layers := m.Layers()
				require.Len(t, layers, 3)
				for i, l := range layers {
					assert.Equal(t, regstore.MediaTypeDockerUncompressedLayer, l.MediaType, "layer %d media type", i)
					content := mgReadBlob(t, r, l.Digest)
					assert.Equal(t, string(app.layers[i]), content, "layer %d bytes", i)
					assert.Equal(t, conf.RootFS.DiffIDs[i], digest.FromString(content), "diff_id %d is the sha256 of the uncompressed layer", i)
					assert.Equal(t, int64(len(content)), l.Size)
				}
				// The manifest the import wrote is reproducible.
				assert.Equal(t, mgExpectedDockerManifest(t, app), string(m.Bytes()))
				assert.Equal(t, 3, res.Stats.Tags)
				assert.Equal(t, 1, res.Stats.Manifests)

				// Re-import: same digest, nothing new.
				res2, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(in), unc)
				require.NoError(t, err)
				assert.Equal(t, res.Manifests, res2.Manifests)
				assert.Equal(t, 1, res2.Stats.ManifestsSkipped)

				// The other image, by mapping its name.
				res3, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(in), migrate.ImportOptions{Tags: map[string]string{"busybox:1.36": "bb"}, UncompressedLayers: true})
				require.NoError(t, err)
				require.Len(t, res3.Tags, 1)
				bbTag, _ := r.Tag("bb")
				bm, err := bbTag.Resolve()
				require.NoError(t, err)
				assert.Equal(t, digest.FromBytes(other), bm.Layers()[0].Digest)
			})
		}
	}
}

// mgExpectedDockerManifest is the schema2 manifest docker would push for
// img with uncompressed layers, formatted as docker formats it.
func mgExpectedDockerManifest(t *testing.T, img mgDockerImage) string {
	t.Helper()
	type desc struct {
		MediaType string        `json:"mediaType"`
		Size      int           `json:"size"`
		Digest    digest.Digest `json:"digest"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, regstore.MediaTypeDockerManifest, desc{regstore.MediaTypeDockerConfig, len(img.config), digest.FromBytes(img.config)}, nil}
	for _, l := range img.layers {
		m.Layers = append(m.Layers, desc{regstore.MediaTypeDockerUncompressedLayer, len(l), digest.FromBytes(l)})
	}
	b, err := json.MarshalIndent(m, "", "   ")
	require.NoError(t, err)
	return string(b)
}

// TestImportDockerArchiveGzipLayers imports an archive whose layers are
// gzip-compressed (as crane save writes them): stored compressed, diff_ids
// checked by decompressing.
func TestImportDockerArchiveGzipLayers(t *testing.T) {
	ctx := context.Background()
	l1 := mgLayerTar(t, map[string]string{"a": mgRandom(1, 100<<10)})
	l2 := mgLayerTar(t, map[string]string{"b": "b"})
	config := mgConfig(t, "amd64", l1, l2)
	z1, z2 := mgGzip(t, l1), mgGzip(t, l2)
	a := newMGTar()
	cfgName := "sha256:" + digest.FromBytes(config).Encoded()
	a.file(t, cfgName, config)
	a.file(t, digest.FromBytes(z1).Encoded()+".tar.gz", z1)
	a.file(t, digest.FromBytes(z2).Encoded()+".tar.gz", z2)
	mj, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"app:v1"},
		"Layers": []string{digest.FromBytes(z1).Encoded() + ".tar.gz", digest.FromBytes(z2).Encoded() + ".tar.gz"}}})
	a.file(t, "manifest.json", mj)
	r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	_, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(a.bytes(t)), migrate.ImportOptions{})
	require.NoError(t, err)
	tg, _ := r.Tag("v1")
	m, err := tg.Resolve()
	require.NoError(t, err)
	require.Len(t, m.Layers(), 2)
	for i, z := range [][]byte{z1, z2} {
		assert.Equal(t, regstore.MediaTypeDockerLayer, m.Layers()[i].MediaType)
		assert.Equal(t, digest.FromBytes(z), m.Layers()[i].Digest)
	}
}

// TestImportDockerArchiveRefused checks archives that must not import.
func TestImportDockerArchiveRefused(t *testing.T) {
	ctx := context.Background()
	l := mgLayerTar(t, map[string]string{"a": "a"})
	big := mgLayerTar(t, map[string]string{"b": mgRandom(3, 100<<10)})
	for _, tc := range []struct {
		name    string
		archive func(t *testing.T) []byte
		want    error
	}{
		{"diff_id mismatch", func(t *testing.T) []byte {
			return mgLegacyArchive(t, mgDockerImage{config: mgConfig(t, "amd64", l, l), layers: [][]byte{l, big}, repoTags: []string{"app:v1"}})
		}, regstore.ErrDigestMismatch},
		{"diff_id count", func(t *testing.T) []byte {
			return mgLegacyArchive(t, mgDockerImage{config: mgConfig(t, "amd64", l), layers: [][]byte{l, big}, repoTags: []string{"app:v1"}})
		}, regstore.ErrDigestMismatch},
		{"no manifest", func(t *testing.T) []byte {
			a := newMGTar()
			a.file(t, "x/layer.tar", l)
			return a.bytes(t)
		}, migrate.ErrInvalidSource},
		{"missing layer", func(t *testing.T) []byte {
			a := newMGTar()
			cfg := mgConfig(t, "amd64", l)
			a.file(t, "c.json", cfg)
			a.file(t, "manifest.json", []byte(`[{"Config":"c.json","RepoTags":["app:v1"],"Layers":["gone/layer.tar"]}]`))
			return a.bytes(t)
		}, fs.ErrNotExist},
		{"not a tar", func(t *testing.T) []byte { return []byte(strings.Repeat("not a tar archive ", 100)) }, migrate.ErrInvalidSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
			_, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(tc.archive(t)), migrate.ImportOptions{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			ok, err := r.Exists()
			require.NoError(t, err)
			assert.False(t, ok, "repository created by a refused import")
		})
	}
}

// TestImportDockerArchiveOCI imports the form newer docker writes: an OCI
// image layout inside the tar, next to manifest.json.
func TestImportDockerArchiveOCI(t *testing.T) {
	ctx := context.Background()
	src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "library/alpine")
	im := mgPopulate(t, src)
	layout := regstore.NewMemFS()
	_, err := migrate.ExportOCILayout(ctx, src, layout, migrate.ExportOptions{Tags: []string{"v1", "docker"}})
	require.NoError(t, err)

	// Rewrite index.json as docker does (full names), and tar it all up
	// with a manifest.json.
	var idx v1.Index
	require.NoError(t, json.Unmarshal(mgRead(t, layout, "index.json"), &idx))
	for i, e := range idx.Manifests {
		switch e.Annotations[v1.AnnotationRefName] {
		case "v1":
			idx.Manifests[i].Annotations = map[string]string{"io.containerd.image.name": "docker.io/library/alpine:3.20", v1.AnnotationRefName: "3.20"}
		case "docker":
			idx.Manifests[i].Annotations = nil // named only by manifest.json
		}
	}
	raw, err := json.Marshal(idx)
	require.NoError(t, err)
	mgWrite(t, layout, "index.json", raw)
	cfg, _ := im.docker.Config()
	var layers []string
	for _, l := range im.docker.Layers() {
		layers = append(layers, "blobs/sha256/"+l.Digest.Encoded())
	}
	mj, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + cfg.Digest.Encoded(), "RepoTags": []string{"alpine:old"}, "Layers": layers}})
	mgWrite(t, layout, "manifest.json", mj)
	a := newMGTar()
	require.NoError(t, fs.WalkDir(layout, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			if p != "." {
				a.dir(t, p)
			}
			return nil
		}
		a.file(t, p, mgRead(t, layout, p))
		return nil
	}))

	r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "alpine")
	res, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(a.bytes(t)), migrate.ImportOptions{})
	require.NoError(t, err)
	got := map[string]digest.Digest{}
	for _, tg := range res.Tags {
		got[tg.Tag] = tg.Digest
	}
	assert.Equal(t, map[string]digest.Digest{"3.20": im.v1.Digest(), "old": im.docker.Digest()}, got)
	st := mgState(t, r)
	want := mgSubset(t, src, mgState(t, src), im.v1, im.docker, im.referrer)
	assert.Equal(t, want.Manifests, st.Manifests)
	assert.Equal(t, want.Blobs, st.Blobs)
}

// TestImportSkopeoDir imports skopeo dir: directories, of one image and of
// an index with its instances (skopeo copy --all).
func TestImportSkopeoDir(t *testing.T) {
	ctx := context.Background()
	src := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
	im := mgPopulate(t, src)
	write := func(t *testing.T, top *regstore.Manifest, w regstore.WriteFS) {
		mgWrite(t, w, "version", []byte("Directory Transport Version: 1.1\n"))
		mgWrite(t, w, "manifest.json", top.Bytes())
		var add func(m *regstore.Manifest)
		add = func(m *regstore.Manifest) {
			for b := range m.Blobs() {
				mgWrite(t, w, b.Digest.Encoded(), []byte(mgReadBlob(t, src, b.Digest)))
			}
			for _, c := range m.Children() {
				cm, err := src.Manifest(c.Digest)
				require.NoError(t, err)
				mgWrite(t, w, c.Digest.Encoded()+".manifest.json", cm.Bytes())
				add(cm)
			}
		}
		add(top)
	}
	for _, bk := range mgBackends {
		t.Run(bk.name, func(t *testing.T) {
			for _, top := range []*regstore.Manifest{im.docker, im.index} {
				dir := bk.new(t)
				write(t, top, dir)
				r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "copy")
				m, err := migrate.ImportSkopeoDir(ctx, r, dir, "t", migrate.ImportOptions{HardLink: true})
				require.NoError(t, err)
				assert.Equal(t, top.Digest(), m.Digest())
				want := mgSubset(t, src, mgState(t, src), top)
				got := mgState(t, r)
				assert.Equal(t, want.Manifests, got.Manifests)
				assert.Equal(t, want.Blobs, got.Blobs)
				assert.Equal(t, map[string]digest.Digest{"t": top.Digest()}, got.Tags)

				// Untagged, and refused when a blob is corrupt.
				r2 := mustRepo(t, mgStore(t, regstore.NewMemFS()), "copy")
				_, err = migrate.ImportSkopeoDir(ctx, r2, dir, "", migrate.ImportOptions{})
				require.NoError(t, err)
				assert.Empty(t, mgState(t, r2).Tags)
				assert.Len(t, mgState(t, r2).Manifests, len(want.Manifests))
			}
			dir := bk.new(t)
			write(t, im.docker, dir)
			l := im.docker.Layers()[1].Digest.Encoded()
			data := mgRead(t, dir, l)
			data[len(data)/2] ^= 1
			mgWrite(t, dir, l, data)
			r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "copy")
			_, err := migrate.ImportSkopeoDir(ctx, r, dir, "t", migrate.ImportOptions{})
			assert.ErrorIs(t, err, regstore.ErrDigestMismatch)
			ok, err := r.Exists()
			require.NoError(t, err)
			assert.False(t, ok)

			mgWrite(t, dir, "version", []byte("Something else"))
			_, err = migrate.ImportSkopeoDir(ctx, r, dir, "t", migrate.ImportOptions{})
			assert.ErrorIs(t, err, migrate.ErrInvalidSource)
		})
	}
}

// TestImportDockerArchiveGzipOption compresses the uncompressed layers of a
// legacy archive: layers streamed (layer.tar), held in memory (small) and
// stored before they were known to be layers (another name) alike. The
// diff_ids stay those of the uncompressed tars, and the result is the same
// on every run.
func TestImportDockerArchiveGzipOption(t *testing.T) {
	ctx := context.Background()
	small := mgLayerTar(t, map[string]string{"etc/hello": "hello\n"})
	big := mgLayerTar(t, map[string]string{"data/blob": mgRandom(9, 150<<10)})
	odd := mgLayerTar(t, map[string]string{"data/odd": mgRandom(10, 90<<10)})
	config := mgConfig(t, "amd64", small, big, odd, small)
	a := newMGTar()
	a.file(t, "s/layer.tar", small)
	a.file(t, "b/layer.tar", big)
	a.file(t, "odd.tar", odd)
	a.file(t, "c.json", config)
	a.file(t, "manifest.json", []byte(`[{"Config":"c.json","RepoTags":["app:v1"],"Layers":["s/layer.tar","b/layer.tar","odd.tar","s/layer.tar"]}]`))
	archive := a.bytes(t)

	var first digest.Digest
	for run := range 2 {
		r := mustRepo(t, mgStore(t, regstore.NewMemFS()), "app")
		res, err := migrate.ImportDockerArchive(ctx, r, bytes.NewReader(archive), migrate.ImportOptions{GzipLayers: true})
		require.NoError(t, err)
		m, err := r.Manifest(res.Tags[0].Digest)
		require.NoError(t, err)
		if run == 0 {
			first = m.Digest()
		} else {
			assert.Equal(t, first, m.Digest(), "the same archive gives the same manifest")
		}
		for i, want := range [][]byte{small, big, odd, small} {
			l := m.Layers()[i]
			assert.Equal(t, regstore.MediaTypeDockerLayer, l.MediaType)
			zr, err := gzip.NewReader(strings.NewReader(mgReadBlob(t, r, l.Digest)))
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Equal(t, want, got, "layer %d decompresses to the archive's tar", i)
		}
		cfg, _ := m.Config()
		assert.Equal(t, string(config), mgReadBlob(t, r, cfg.Digest))
	}
}

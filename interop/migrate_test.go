package interop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The migration tests: layouts, archives and dirs written by the real tools
// are imported with regstore into a tree the real registry then serves,
// and what regstore exports is read by the real tools. Digests must never
// change on the way.

// migSource is a registry holding src/app, pushed with crane:
//
//	src/app:oci     OCI image, two layers
//	src/app:docker  Docker schema2 image, one layer
//	src/app:arm     src/app:oci with platform linux/arm64
//	src/app:multi   OCI index of oci and arm
type migSource struct {
	reg *Registry
	d   map[string]string // tag -> digest
}

const migSrcRepo = "src/app"

func startMigSource(t *testing.T, version string) *migSource {
	t.Helper()
	reg := startRegistry(t, version, t.TempDir(), RegistryOptions{})
	dir := t.TempDir()
	l1 := makeLayerTar(t, dir, "l1.tar", map[string]string{"etc/hello": "hello\n"})
	l2 := makeLayerTar(t, dir, "l2.tar", map[string]string{"bin/app": "#!/bin/sh\necho app\n", "etc/app.conf": "x=1\n"})
	d := map[string]string{}
	d["oci"] = craneAppend(t, reg.Ref(migSrcRepo+":oci"), true, l1, l2)
	d["docker"] = craneAppend(t, reg.Ref(migSrcRepo+":docker"), false, l1)
	d["arm"] = craneSetPlatform(t, reg.Ref(migSrcRepo+":oci"), "linux/arm64", reg.Ref(migSrcRepo+":arm"))
	d["multi"] = craneIndexAppend(t, reg.Ref(migSrcRepo+":multi"), false,
		reg.Ref(migSrcRepo+"@"+d["oci"]), reg.Ref(migSrcRepo+"@"+d["arm"]))
	return &migSource{reg: reg, d: d}
}

// layoutRefs reads an OCI layout's index.json: ref name -> digest, and the
// digests of all entries in order.
func layoutRefs(t *testing.T, dir string) (refs map[string]string, all []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(raw, &idx), "index.json: %s", raw)
	refs = map[string]string{}
	for _, m := range idx.Manifests {
		if n := m.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			refs[n] = m.Digest
		}
		all = append(all, m.Digest)
	}
	return refs, all
}

// migLayout is an OCI layout a tool wrote, to import.
type migLayout struct {
	tool     string
	dir      string
	want     map[string]string // tag -> digest, as the layout has them
	tags     map[string]string // ImportOptions.Tags
	hardLink bool
	trust    bool
}

func (l migLayout) repo() string { return "migrate/" + l.tool }

// toolLayouts has crane, skopeo and umoci each write an OCI layout.
func toolLayouts(t *testing.T, src *migSource) []migLayout {
	t.Helper()
	ref := func(tag string) string { return src.reg.Ref(migSrcRepo + ":" + tag) }

	// crane pull --format oci: no ref names in index.json; tags are chosen
	// by digest. Media types are kept, the Docker image's too.
	craneDir := filepath.Join(t.TempDir(), "crane")
	mustTool(t, "crane", "pull", "--insecure", "--format", "oci", ref("oci"), ref("docker"), ref("multi"), craneDir)
	_, all := layoutRefs(t, craneDir)
	require.ElementsMatch(t, []string{src.d["oci"], src.d["docker"], src.d["multi"]}, all)
	craneWant := map[string]string{"oci": src.d["oci"], "docker": src.d["docker"], "multi": src.d["multi"]}
	craneTags := map[string]string{}
	for tag, d := range craneWant {
		craneTags[d] = tag
	}

	// skopeo copy … oci:DIR:TAG, one layout, three tags; the Docker image is
	// converted to OCI by skopeo, the index copied with --all.
	skopeoDir := filepath.Join(t.TempDir(), "skopeo")
	skopeoCopyOCI(t, ref("oci"), skopeoDir, "oci")
	skopeoCopyOCI(t, ref("docker"), skopeoDir, "docker")
	skopeoCopy(t, "docker://"+ref("multi"), "oci:"+skopeoDir+":multi", "--all")
	skopeoWant, _ := layoutRefs(t, skopeoDir)
	require.Len(t, skopeoWant, 3)
	assert.Equal(t, src.d["oci"], skopeoWant["oci"], "skopeo keeps an OCI image's digest")

	// umoci: an empty image and one with an inserted file. umoci leaves
	// unreferenced blobs behind (the manifests insert replaced).
	umociDir := filepath.Join(t.TempDir(), "umoci")
	hello := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(hello, []byte("hello from umoci\n"), 0o644))
	mustTool(t, "umoci", "init", "--layout", umociDir)
	mustTool(t, "umoci", "new", "--image", umociDir+":empty")
	mustTool(t, "umoci", "new", "--image", umociDir+":base")
	mustTool(t, "umoci", "insert", "--image", umociDir+":base", hello, "/etc/hello.txt")
	umociWant, _ := layoutRefs(t, umociDir)
	require.Len(t, umociWant, 2)

	return []migLayout{
		{tool: "crane", dir: craneDir, want: craneWant, tags: craneTags},
		{tool: "skopeo", dir: skopeoDir, want: skopeoWant, hardLink: true},
		{tool: "umoci", dir: umociDir, want: umociWant, hardLink: true, trust: true},
	}
}

// TestMigrateOCILayout: crane, skopeo and umoci write OCI layouts;
// regstore imports them into a tree; the real registry serves it with the
// layouts' digests; crane validates every image; skopeo (and crane) copy
// them back out to OCI layouts with identical digests.
func TestMigrateOCILayout(t *testing.T) {
	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			ctx := context.Background()
			src := startMigSource(t, version)
			layouts := toolLayouts(t, src)

			root := t.TempDir()
			s := openStore(t, root)
			for _, l := range layouts {
				var fsys fs.FS = os.DirFS(l.dir)
				if l.hardLink {
					d, err := regstore.OpenDir(l.dir)
					require.NoError(t, err)
					t.Cleanup(func() { d.Close() })
					fsys = d
				}
				res, err := migrate.ImportOCILayout(ctx, storeRepo(t, s, l.repo()), fsys,
					migrate.ImportOptions{Tags: l.tags, HardLink: l.hardLink, TrustDigests: l.trust})
				require.NoError(t, err, "import the %s layout", l.tool)
				got := map[string]string{}
				for _, tg := range res.Tags {
					got[tg.Tag] = tg.Digest.String()
				}
				assert.Equal(t, l.want, got, "tags imported from the %s layout", l.tool)
				if l.hardLink {
					assert.NotZero(t, res.Stats.BlobsLinked, "%s: blobs hard-linked", l.tool)
					assert.Zero(t, res.Stats.Blobs, "%s: blobs copied", l.tool)
				}
			}

			reg := startRegistry(t, version, root, RegistryOptions{ReadOnly: true})
			for _, l := range layouts {
				tags, status := listTags(t, reg.Host, l.repo())
				require.Equal(t, 200, status)
				assert.ElementsMatch(t, sortedKeys(l.want), tags, "%s tags listed", l.repo())
				for tag, d := range l.want {
					assert.Equal(t, d, headManifest(t, reg.Host, l.repo(), tag).Digest, "%s:%s served", l.repo(), tag)
					craneValidate(t, reg.Ref(l.repo()+":"+tag))
				}
				// Back out with skopeo: identical digests. (skopeo rewrites
				// an index it copies unless it wrote it itself, dropping
				// fields it does not know, and converts Docker images to
				// OCI; crane's index and Docker image are checked with
				// crane instead.)
				out := filepath.Join(t.TempDir(), "out")
				for tag, d := range l.want {
					if l.tool == "crane" && tag != "oci" {
						continue
					}
					skopeoCopy(t, "docker://"+reg.Ref(l.repo()+":"+tag), "oci:"+out+":"+tag, "--all")
					back, _ := layoutRefs(t, out)
					assert.Equal(t, d, back[tag], "skopeo copy of %s:%s back to an OCI layout", l.repo(), tag)
				}
				if l.tool == "crane" {
					craneOut := filepath.Join(t.TempDir(), "crane-out")
					var refs []string
					for _, tag := range sortedKeys(l.want) {
						refs = append(refs, reg.Ref(l.repo()+":"+tag))
					}
					mustTool(t, "crane", append(append([]string{"pull", "--insecure", "--format", "oci"}, refs...), craneOut)...)
					_, all := layoutRefs(t, craneOut)
					var want []string
					for _, d := range l.want {
						want = append(want, d)
					}
					assert.ElementsMatch(t, want, all, "crane pull of the crane layout's images")
				}
			}
		})
	}
}

// TestMigrateExport: regstore exports repositories (one written by the
// registry, one imported from skopeo) to OCI layouts that umoci lists,
// skopeo inspects and copies, and crane pushes, with the same digests.
func TestMigrateExport(t *testing.T) {
	ctx := context.Background()
	src := startMigSource(t, V3)
	s := openStore(t, src.reg.Root)
	out := filepath.Join(t.TempDir(), "export")
	d := mkDir(t, out)
	stats, err := migrate.ExportOCILayout(ctx, storeRepo(t, s, migSrcRepo), d, migrate.ExportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, stats.Tags)

	assert.Equal(t, []string{"arm", "docker", "multi", "oci"}, sorted(umociList(t, out)))
	refs, _ := layoutRefs(t, out)
	assert.Equal(t, src.d, refs, "index.json of the export")
	for _, tag := range []string{"oci", "arm"} {
		var info struct{ Digest string }
		require.NoError(t, json.Unmarshal([]byte(mustTool(t, "skopeo", "inspect", "oci:"+out+":"+tag)), &info))
		assert.Equal(t, src.d[tag], info.Digest, "skopeo inspect oci:%s:%s", out, tag)
		mustTool(t, "umoci", "stat", "--image", out+":"+tag)
		// skopeo reads every blob, checking its digest.
		skopeoCopy(t, "oci:"+out+":"+tag, "dir:"+filepath.Join(t.TempDir(), "dir"))
	}
	// skopeo 1.9 lists only OCI entries of a layout; the index it reads
	// raw.
	raw := mustTool(t, "skopeo", "inspect", "--raw", "oci:"+out+":multi")
	assert.Equal(t, src.d["multi"], digestOf([]byte(raw)), "skopeo inspect --raw of the index")

	// crane push of one-entry exports (an image, an index), and skopeo
	// copy of an image, into the registry: the same digests come out.
	// (skopeo re-serialises an index it copies, dropping fields it does not
	// know, such as crane's artifactType, so it is not used for the index.)
	for _, tag := range []string{"docker", "multi"} {
		one := filepath.Join(t.TempDir(), tag)
		_, err = migrate.ExportOCILayout(ctx, storeRepo(t, s, migSrcRepo), mkDir(t, one), migrate.ExportOptions{Tags: []string{tag}})
		require.NoError(t, err)
		pushed := digestFromCraneOutput(t, mustTool(t, "crane", "push", "--insecure", one, src.reg.Ref("pushed/app:"+tag)))
		assert.Equal(t, src.d[tag], pushed, "crane push of the exported layout of %s", tag)
	}
	skopeoCopy(t, "oci:"+out+":oci", "docker://"+src.reg.Ref("pushed/app:oci"), "--dest-tls-verify=false")
	assert.Equal(t, src.d["oci"], craneDigest(t, src.reg.Ref("pushed/app:oci")))
}

func mkDir(t *testing.T, dir string) *regstore.Dir {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// TestMigrateSkopeoDir: skopeo copy … dir: of an image and of an index
// (--all), imported, served with the same digests.
func TestMigrateSkopeoDir(t *testing.T) {
	ctx := context.Background()
	src := startMigSource(t, V3)
	root := t.TempDir()
	s := openStore(t, root)
	want := map[string]string{}
	for _, tag := range []string{"docker", "oci", "multi"} {
		dir := filepath.Join(t.TempDir(), tag)
		skopeoCopy(t, "docker://"+src.reg.Ref(migSrcRepo+":"+tag), "dir:"+dir, "--all")
		raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		require.NoError(t, err)
		want[tag] = digestOf(raw)
		if tag != "multi" {
			assert.Equal(t, src.d[tag], want[tag], "skopeo dir: keeps the manifest")
		}
		d := mkDir(t, dir)
		m, err := migrate.ImportSkopeoDir(ctx, storeRepo(t, s, "fromdir/app"), d, tag, migrate.ImportOptions{HardLink: true})
		require.NoError(t, err)
		assert.Equal(t, want[tag], m.Digest().String())
	}
	reg := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
	for tag, d := range want {
		assert.Equal(t, d, headManifest(t, reg.Host, "fromdir/app", tag).Digest)
		craneValidate(t, reg.Ref("fromdir/app:"+tag))
	}
}

// migDockerSave writes a docker save archive in the legacy form (docker
// 1.10 to 24): per layer a directory with VERSION, json and an
// uncompressed layer.tar (a repeated layer's layer.tar is a symbolic link
// to the first), the config as <hex>.json, manifest.json, repositories.
func migDockerSave(t *testing.T, path string, repoTag string, layers ...[]byte) (config []byte) {
	t.Helper()
	var diffIDs []string
	for _, l := range layers {
		diffIDs = append(diffIDs, digestOf(l))
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
		"config":  map[string]any{"Cmd": []string{"/bin/sh"}, "Env": []string{"PATH=/bin"}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": []map[string]any{{"created": "2020-01-01T00:00:00Z", "created_by": "test"}},
	})
	require.NoError(t, err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) {
		h.ModTime, h.Mode = fixedMTime, 0o644
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		require.NoError(t, tw.WriteHeader(h))
		if len(data) > 0 {
			_, err := tw.Write(data)
			require.NoError(t, err)
		}
	}
	first := map[string]string{}
	var paths []string
	parent := ""
	for _, l := range layers {
		id := strings.TrimPrefix(digestOf([]byte(parent+digestOf(l))), "sha256:")
		add(&tar.Header{Typeflag: tar.TypeDir, Name: id + "/"}, nil)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: id + "/VERSION"}, []byte("1.0"))
		add(&tar.Header{Typeflag: tar.TypeReg, Name: id + "/json"}, []byte(fmt.Sprintf(`{"id":%q,"parent":%q}`, id, parent)))
		if f, ok := first[digestOf(l)]; ok {
			add(&tar.Header{Typeflag: tar.TypeSymlink, Name: id + "/layer.tar", Linkname: "../" + f + "/layer.tar"}, nil)
		} else {
			add(&tar.Header{Typeflag: tar.TypeReg, Name: id + "/layer.tar"}, l)
			first[digestOf(l)] = id
		}
		paths = append(paths, id+"/layer.tar")
		parent = id
	}
	cfgName := strings.TrimPrefix(digestOf(config), "sha256:") + ".json"
	add(&tar.Header{Typeflag: tar.TypeReg, Name: cfgName}, config)
	mj, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{repoTag}, "Layers": paths}})
	require.NoError(t, err)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json"}, mj)
	i := strings.LastIndex(repoTag, ":")
	rj, err := json.Marshal(map[string]map[string]string{repoTag[:i]: {repoTag[i+1:]: parent}})
	require.NoError(t, err)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "repositories"}, rj)
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return config
}

// TestMigrateDockerArchive: a legacy docker save archive built from known
// layers imports, and the registry serves an image whose config diff_ids
// are the sha256 of its uncompressed layers. Imported with
// UncompressedLayers the test checks that itself, and crane export and
// skopeo pull the image; imported with the default (gzip-compressed
// layers), crane validate --remote checks it (crane validate cannot read uncompressed layers: it
// always gunzips).
func TestMigrateDockerArchive(t *testing.T) {
	dir := t.TempDir()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	l1 := read(makeLayerTar(t, dir, "l1.tar", map[string]string{"etc/os-release": "ID=test\n", "bin/sh": "#!fake\n"}))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	l2 := read(makeLayerTar(t, dir, "l2.tar", map[string]string{"usr/lib/big": string(big)}))
	archive := filepath.Join(dir, "image.tar")
	config := migDockerSave(t, archive, "docker/app:v1", l1, l2, l1)

	root := t.TempDir()
	s := openStore(t, root)
	digests := map[string]string{}
	for repo, gz := range map[string]bool{"docker/app": false, "docker/gz": true} {
		f, err := os.Open(archive)
		require.NoError(t, err)
		opts := migrate.ImportOptions{UncompressedLayers: !gz, Tags: map[string]string{"docker/app:v1": "v1"}}
		res, err := migrate.ImportDockerArchive(context.Background(), storeRepo(t, s, repo), f, opts)
		f.Close()
		require.NoError(t, err)
		require.Len(t, res.Tags, 1)
		digests[repo] = res.Tags[0].Digest.String()
	}

	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			reg := startRegistry(t, version, root, RegistryOptions{ReadOnly: true})
			craneValidate(t, reg.Ref("docker/gz:v1"))
			for repo, wantType := range map[string]string{"docker/app": regstore.MediaTypeDockerUncompressedLayer, "docker/gz": regstore.MediaTypeDockerLayer} {
				m := getManifest(t, reg.Host, repo, "v1")
				require.Equal(t, 200, m.Status)
				assert.Equal(t, digests[repo], m.Digest)
				assert.Equal(t, MediaTypeDockerManifest, m.ContentType)
				mt, blobs, _ := manifestRefs(t, m.Body)
				assert.Equal(t, MediaTypeDockerManifest, mt)
				require.Len(t, blobs, 4)
				assert.Equal(t, digestOf(config), blobs[0], "config stored verbatim (image ID kept)")
				cfg := getBlob(t, reg.Host, repo, blobs[0])
				require.Equal(t, 200, cfg.Status)
				var c struct {
					RootFS struct {
						DiffIDs []string `json:"diff_ids"`
					} `json:"rootfs"`
				}
				require.NoError(t, json.Unmarshal(cfg.Body, &c))
				var man struct {
					Layers []struct {
						MediaType string `json:"mediaType"`
					} `json:"layers"`
				}
				require.NoError(t, json.Unmarshal(m.Body, &man))
				for i, want := range [][]byte{l1, l2, l1} {
					assert.Equal(t, wantType, man.Layers[i].MediaType, "%s layer %d", repo, i)
					layer := getBlob(t, reg.Host, repo, blobs[i+1])
					require.Equal(t, 200, layer.Status)
					body := layer.Body
					if wantType == regstore.MediaTypeDockerLayer {
						zr, err := gzip.NewReader(bytes.NewReader(body))
						require.NoError(t, err)
						body, err = io.ReadAll(zr)
						require.NoError(t, err)
					}
					assert.Equal(t, want, body, "%s layer %d is the archive's tar", repo, i)
					assert.Equal(t, c.RootFS.DiffIDs[i], digestOf(body), "%s diff_id %d = sha256 of the uncompressed layer", repo, i)
				}
				// Real clients pull it: skopeo (checking every digest) and
				// crane export (which flattens the layers).
				skopeoCopyDir(t, reg.Ref(repo+":v1"), filepath.Join(t.TempDir(), "pulled"))
				flat := filepath.Join(t.TempDir(), "flat.tar")
				mustTool(t, "crane", "export", "--insecure", reg.Ref(repo+":v1"), flat)
				assert.Contains(t, string(read(flat)), "usr/lib/big", "crane export of %s", repo)
			}
		})
	}
}

// TestMigrateSkopeoDockerArchive: an image skopeo writes as a docker
// archive (layers named <hex>.tar) imports with the CLI's defaults into an
// image the real registry v3 serves and crane validate accepts (layers
// gzip-compressed); regstore check is clean after every import command;
// importing the same archive into another repository gives the same digest.
func TestMigrateSkopeoDockerArchive(t *testing.T) {
	src := startMigSource(t, V3)
	archive := filepath.Join(t.TempDir(), "skopeo.tar")
	skopeoCopy(t, "docker://"+src.reg.Ref(migSrcRepo+":oci"), "docker-archive:"+archive+":src/app:oci")
	bin := buildRegstoreCLI(t)
	root := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		require.NoError(t, err, "regstore %q:\n%s", args, out)
		return string(out)
	}
	// Into another repository: the archive's only image keeps its tag.
	run("import-docker-archive", root, "mirror/app", archive)
	run("check", root)
	run("import-docker-archive", root, "other/app", archive)
	run("check", root)
	run("import-docker-archive", "--uncompressed", root, "plain/app", archive)
	run("check", root)

	reg := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
	a := getManifest(t, reg.Host, "mirror/app", "oci")
	require.Equal(t, 200, a.Status, "the registry serves mirror/app:oci")
	b := getManifest(t, reg.Host, "other/app", "oci")
	require.Equal(t, 200, b.Status)
	assert.Equal(t, a.Digest, b.Digest, "the same archive gives the same digests")
	var man struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &man))
	require.NotEmpty(t, man.Layers)
	for _, l := range man.Layers {
		assert.Equal(t, regstore.MediaTypeDockerLayer, l.MediaType)
	}
	craneValidate(t, reg.Ref("mirror/app:oci"))
	require.Equal(t, 200, getManifest(t, reg.Host, "plain/app", "oci").Status)
}

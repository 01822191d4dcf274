package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// indexEntries reads DIR/index.json as ref name (or "@digest" for an
// unnamed entry) -> digest.
func indexEntries(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(b, &idx))
	out := map[string]string{}
	for _, m := range idx.Manifests {
		name := m.Annotations[migrate.AnnotationRefName]
		if name == "" {
			name = "@" + m.Digest
		}
		out[name] = m.Digest
	}
	return out
}

func inspectRepo(t *testing.T, root, repo string) map[string]any {
	t.Helper()
	got := runJSON(t, 0, "inspect", "--json", root)
	r, ok := got["repositories"].(map[string]any)[repo].(map[string]any)
	require.True(t, ok, "repository %s in %s", repo, root)
	return r
}

func TestExportImportRoundTrip(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	layout := filepath.Join(t.TempDir(), "oci")

	got := runJSON(t, 0, "export-oci", "--json", tr.dir, "team/app", layout, "--tag", "v1,multi", "--tag", "docker")
	assert.Equal(t, []string{"directory", "manifests", "repository", "stats"}, keys(got))
	assert.Equal(t, "team/app", got["repository"])
	assert.Equal(t, layout, got["directory"])
	stats := got["stats"].(map[string]any)
	assert.Equal(t, []string{"blobs", "blobsLinked", "blobsSkipped", "bytes", "bytesLinked", "bytesSkipped", "manifests",
		"manifestsSkipped", "repositories", "tags", "totalBlobs", "totalBytes"}, keys(stats))
	assert.EqualValues(t, 3, stats["tags"])
	assert.Equal(t, before, snapshot(t, tr.dir), "export-oci changed the tree")
	assert.FileExists(t, filepath.Join(layout, "oci-layout"))
	entries := indexEntries(t, layout)
	// The referrer of v1 comes along, unnamed.
	assert.Equal(t, map[string]string{"v1": string(tr.cur.Digest()), "multi": string(tr.index.Digest()),
		"docker": string(tr.dock.Digest()), "@" + string(tr.sig.Digest()): string(tr.sig.Digest())}, entries)
	var listed []any
	for _, m := range got["manifests"].([]any) {
		m := m.(map[string]any)
		listed = append(listed, m["digest"])
		if m["digest"] == string(tr.sig.Digest()) {
			assert.Equal(t, []string{"digest", "mediaType", "size"}, keys(m), "unnamed entry")
		} else {
			assert.Equal(t, []string{"digest", "mediaType", "refName", "size"}, keys(m))
		}
	}
	assert.Len(t, listed, 4)

	// Import into a new tree: same digests, same tags.
	root2 := filepath.Join(t.TempDir(), "root2")
	imp := runJSON(t, 0, "import-oci", "--json", root2, "mirror/app", layout)
	assert.Equal(t, []string{"manifests", "repository", "skipped", "stats", "tags"}, keys(imp))
	assert.Equal(t, []any{}, imp["skipped"])
	tags := map[string]any{}
	for _, tg := range imp["tags"].([]any) {
		tg := tg.(map[string]any)
		tags[tg["tag"].(string)] = tg["digest"]
		assert.Equal(t, tg["tag"], tg["refName"])
	}
	assert.Equal(t, map[string]any{"v1": string(tr.cur.Digest()), "multi": string(tr.index.Digest()),
		"docker": string(tr.dock.Digest())}, tags)
	r := inspectRepo(t, root2, "mirror/app")
	assert.Equal(t, tags, r["tags"])
	orig := inspectRepo(t, tr.dir, "team/app")
	for _, m := range []*regstore.Manifest{tr.cur, tr.dock, tr.index, tr.child, tr.sig} {
		assert.Equal(t, orig["manifests"].(map[string]any)[string(m.Digest())], r["manifests"].(map[string]any)[string(m.Digest())],
			"manifest %s after the round trip", m.Digest())
	}
	assert.NotContains(t, r["manifests"], string(tr.old.Digest()), "untagged, not exported")
	runJSON(t, 0, "check", "--json", root2)

	// Export again from the imported tree: the same layout entries.
	layout2 := filepath.Join(t.TempDir(), "oci2")
	runOK(t, "export-oci", root2, "mirror/app", layout2)
	assert.Equal(t, entries, indexEntries(t, layout2))

	// Importing again skips everything.
	again := runJSON(t, 0, "import-oci", "--json", root2, "mirror/app", layout)
	st := again["stats"].(map[string]any)
	assert.EqualValues(t, 0, st["blobs"])
	assert.Equal(t, st["totalBlobs"], st["blobsSkipped"])

	// Human output.
	out := runOK(t, "import-oci", root2, "other/app", layout, "--tag", "v1=prod")
	assert.Contains(t, out, "tagged other/app:prod -> "+string(tr.cur.Digest())+"  (from v1)\n")
	assert.Contains(t, out, "skipped docker (no tag in other/app)\n")
	assert.Contains(t, out, "skipped multi (no tag in other/app)\n")
}

func TestImportOCILoneTag(t *testing.T) {
	tr := buildTree(t)
	one := filepath.Join(t.TempDir(), "one")
	runOK(t, "export-oci", tr.dir, "team/app", one, "--tag", "docker")
	root := t.TempDir()
	got := runJSON(t, 0, "import-oci", root, "x/y", one, "--tag", "prod", "--json")
	assert.Equal(t, []any{map[string]any{"tag": "prod", "digest": string(tr.dock.Digest()), "refName": "docker"}}, got["tags"])

	many := filepath.Join(t.TempDir(), "many")
	runOK(t, "export-oci", tr.dir, "team/app", many)
	out, errOut, code := runCLI(t, "import-oci", root, "x/y", many, "--tag", "prod")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "use --tag REF=TAG")

	for _, c := range []struct{ args []string }{
		{[]string{"import-oci", root, "x/y"}},
		{[]string{"import-oci", root, "X/Y", one}},
		{[]string{"import-oci", root, "x/y", one, "--tag", "v1=bad tag"}},
		{[]string{"import-oci", root, "x/y", one, "--trust-digests"}},
		{[]string{"export-oci", tr.dir, "team/app", one, "--tag", "bad tag"}},
	} {
		out, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, 2, code, "%q: %s", c.args, errOut)
		assert.Empty(t, out, "%q", c.args)
		assert.Contains(t, errOut, "Usage: regstore ", "%q", c.args)
	}
	_, errOut, code = runCLI(t, "import-oci", root, "x/y", filepath.Join(root, "missing"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no such file or directory")
	_, errOut, code = runCLI(t, "export-oci", tr.dir, "team/nothing", filepath.Join(root, "out"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "team/nothing")
}

// dockerArchive writes a legacy "docker save" archive of one image with two
// layers, named by repoTags, and returns its path, the config's digest and
// the layers' diff_ids.
func dockerArchive(t *testing.T, repoTags ...string) (string, digest.Digest, []digest.Digest) {
	t.Helper()
	var diffIDs []digest.Digest
	var layerTars [][]byte
	for i, files := range []map[string]string{{"etc/hello": "hello"}, {"etc/world": "world", "bin/x": "x"}} {
		l := regstoretest.NewLayer(files)
		zr, err := gzip.NewReader(bytes.NewReader(l.Compressed))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, l.DiffID, digest.FromBytes(raw), "layer %d", i)
		diffIDs, layerTars = append(diffIDs, l.DiffID), append(layerTars, raw)
	}
	config, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}, "config": map[string]any{}})
	require.NoError(t, err)
	configDigest := digest.FromBytes(config)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	var layerPaths []string
	for i, raw := range layerTars {
		p := diffIDs[i].Encoded() + "/layer.tar"
		add(p, raw)
		layerPaths = append(layerPaths, p)
	}
	add(configDigest.Encoded()+".json", config)
	manifest, err := json.Marshal([]map[string]any{{"Config": configDigest.Encoded() + ".json", "RepoTags": repoTags, "Layers": layerPaths}})
	require.NoError(t, err)
	add("manifest.json", manifest)
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "image.tar")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p, configDigest, diffIDs
}

func TestImportDockerArchive(t *testing.T) {
	archive, configDigest, diffIDs := dockerArchive(t, "legacy/app:v2", "elsewhere/app:1")
	root := filepath.Join(t.TempDir(), "root")
	got := runJSON(t, 0, "import-docker-archive", "--json", "--uncompressed", root, "legacy/app", archive)
	assert.Equal(t, []any{"elsewhere/app:1"}, got["skipped"])
	tags := got["tags"].([]any)
	require.Len(t, tags, 1)
	tag := tags[0].(map[string]any)
	assert.Equal(t, "v2", tag["tag"])
	assert.Equal(t, "legacy/app:v2", tag["refName"])
	mfs := got["manifests"].([]any)
	require.Len(t, mfs, 1)
	assert.Equal(t, regstore.MediaTypeDockerManifest, mfs[0].(map[string]any)["mediaType"])
	assert.Equal(t, tag["digest"], mfs[0].(map[string]any)["digest"])

	// With --uncompressed, layers are stored as they are: each layer's
	// digest is its diff_id, and the config (the image ID) is kept.
	r := inspectRepo(t, root, "legacy/app")
	m := r["manifests"].(map[string]any)[tag["digest"].(string)].(map[string]any)
	assert.Equal(t, digests(configDigest, diffIDs[0], diffIDs[1]), m["references"])
	runJSON(t, 0, "check", "--json", root)

	// From standard input, with an explicit tag and gzip-compressed layers
	// (the default; --gzip is accepted and does nothing).
	cmdOut := runWithStdin(t, archive, "import-docker-archive", root, "legacy/other", "-", "--tag", "elsewhere/app:1=one", "--gzip")
	assert.Contains(t, cmdOut, "tagged legacy/other:one -> sha256:")
	assert.Contains(t, cmdOut, "(from elsewhere/app:1)")
	r = inspectRepo(t, root, "legacy/other")
	for _, d := range r["tags"].(map[string]any) {
		m := r["manifests"].(map[string]any)[d.(string)].(map[string]any)
		refs := m["references"].([]any)
		assert.Equal(t, string(configDigest), refs[0])
		assert.NotContains(t, refs, string(diffIDs[0]), "gzip-compressed layers have other digests")
	}

	_, errOut, code := runCLI(t, "import-docker-archive", root, "legacy/app", archive, "--tag", "v3")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want REF=TAG")
}

func runWithStdin(t *testing.T, stdinFile string, args ...string) string {
	t.Helper()
	f, err := os.Open(stdinFile)
	require.NoError(t, err)
	defer f.Close()
	cmd := execCommand(args...)
	cmd.Stdin = f
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "regstore %q: %s", args, stderr.String())
	return stdout.String()
}

func TestImportSkopeoDir(t *testing.T) {
	tr := buildTree(t)
	// A skopeo dir: of tr.cur: manifest.json, version, blobs named by hex.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), tr.cur.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "version"), []byte("Directory Transport Version: 1.1\n"), 0o644))
	for d := range tr.cur.Blobs() {
		b, err := tr.root.Blob(d.Digest)
		require.NoError(t, err)
		rc, err := b.Open()
		require.NoError(t, err)
		data, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, d.Digest.Encoded()), data, 0o644))
	}
	root := t.TempDir()
	got := runJSON(t, 0, "import-skopeo-dir", "--json", root, "sk/app:v9", dir)
	assert.Equal(t, []any{map[string]any{"tag": "v9", "digest": string(tr.cur.Digest())}}, got["tags"])
	assert.Equal(t, []any{}, got["skipped"])
	assert.EqualValues(t, 3, got["stats"].(map[string]any)["blobs"], "config and two layers")
	r := inspectRepo(t, root, "sk/app")
	assert.Equal(t, map[string]any{"v9": string(tr.cur.Digest())}, r["tags"])

	// Without a tag: imported untagged, listed.
	out := runOK(t, "import-skopeo-dir", root, "sk/untagged", dir)
	assert.Contains(t, out, "imported 1 manifest into sk/untagged\n  "+string(tr.cur.Digest()))
	assert.NotContains(t, out, "\ntagged ")

	_, errOut, code := runCLI(t, "import-skopeo-dir", root, "sk/app@"+string(tr.cur.Digest()), dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want REPO[:TAG]")
}

func TestCopy(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	dst := filepath.Join(t.TempDir(), "dst")

	got := runJSON(t, 0, "copy", "--json", tr.dir, dst, "--repo", "team/app/web")
	assert.Equal(t, []string{"destination", "source", "stats"}, keys(got))
	stats := got["stats"].(map[string]any)
	assert.EqualValues(t, 1, stats["repositories"])
	assert.EqualValues(t, 2, stats["blobs"], "config and base layer (manifests count apart)")
	assert.EqualValues(t, 1, stats["manifests"])
	assert.EqualValues(t, 1, stats["tags"])
	inspected := runJSON(t, 0, "inspect", "--json", dst)
	assert.Equal(t, []string{"team/app/web"}, keys(inspected["repositories"].(map[string]any)))
	assert.Equal(t, inspectRepo(t, tr.dir, "team/app/web"), inspectRepo(t, dst, "team/app/web"))

	// One tag of another repository: the tag, what it references, its referrer.
	got = runJSON(t, 0, "copy", "--json", tr.dir, dst, "--tag", "team/app:v1")
	r := inspectRepo(t, dst, "team/app")
	assert.Equal(t, map[string]any{"v1": string(tr.cur.Digest())}, r["tags"])
	assert.Contains(t, r["manifests"], string(tr.sig.Digest()))
	assert.NotContains(t, r["manifests"], string(tr.old.Digest()))
	assert.EqualValues(t, 1, got["stats"].(map[string]any)["blobsSkipped"], "the base layer was there")

	// Everything; a re-run copies nothing.
	runOK(t, "copy", tr.dir, dst)
	assert.Equal(t, inspectRepo(t, tr.dir, "team/app"), inspectRepo(t, dst, "team/app"))
	got = runJSON(t, 0, "copy", "--json", tr.dir, dst)
	stats = got["stats"].(map[string]any)
	assert.EqualValues(t, 0, stats["blobs"])
	assert.Equal(t, stats["totalBlobs"], stats["blobsSkipped"])
	assert.Equal(t, before, snapshot(t, tr.dir), "copy changed its source")
	runJSON(t, 0, "check", "--json", dst)

	out := runOK(t, "copy", tr.dir, filepath.Join(t.TempDir(), "human"), "--repo", "team/app/web")
	assert.Contains(t, out, "copied 1 repository from "+tr.dir+" to ")
	assert.Contains(t, out, "blobs: 2 copied (")

	for _, args := range [][]string{
		{"copy", tr.dir},
		{"copy", tr.dir, tr.dir},
		{"copy", tr.dir, dst, "--tag", "team/app"},
		{"copy", tr.dir, dst, "--repo", "Bad"},
	} {
		out, errOut, code := runCLI(t, args...)
		assert.Equal(t, 2, code, "%q: %s", args, errOut)
		assert.Empty(t, out)
	}
}

func TestCopyHardLink(t *testing.T) {
	tr := buildTree(t)
	dst := filepath.Join(filepath.Dir(tr.dir), "linked") // same filesystem
	got := runJSON(t, 0, "copy", "--json", "--hardlink", tr.dir, dst, "--repo", "team/app/web")
	stats := got["stats"].(map[string]any)
	assert.EqualValues(t, 0, stats["blobs"], "nothing copied")
	assert.EqualValues(t, 2, stats["blobsLinked"])
	p := filepath.FromSlash(tr.root.Layout().BlobData(tr.web.Layers()[0].Digest))
	a, err := os.Stat(filepath.Join(tr.dir, p))
	require.NoError(t, err)
	b, err := os.Stat(filepath.Join(dst, p))
	require.NoError(t, err)
	assert.True(t, os.SameFile(a, b), "the base layer's data is one file in both trees")
	assert.Equal(t, inspectRepo(t, tr.dir, "team/app/web"), inspectRepo(t, dst, "team/app/web"))
}

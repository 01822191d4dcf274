package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/treearchive"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binary is the regstore command built for the tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		gobin, err := exec.LookPath("go")
		if err != nil {
			fmt.Fprintln(os.Stderr, "go not found:", err)
			return 1
		}
		dir, err := os.MkdirTemp("", "regstore-cli-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "regstore")
		if out, err := exec.Command(gobin, "build", "-o", binary, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// tree is a registry tree on disk:
//
//	team/app:      old (untagged: v1 moved to cur), cur (v1, latest),
//	               dock (Docker, "docker"), index (multi) of child
//	               (untagged), sig (referrer of cur, untagged), and a
//	               linked blob nothing references (loose);
//	team/app/web:  web (1.0), sharing cur's base layer.
type tree struct {
	root                                *regstore.Store
	dir                                 string
	old, cur, dock, index, child, sig   *regstore.Manifest
	web                                 *regstore.Manifest
	loose                               *regstore.Blob
	repoApp, repoWeb                    *regstore.Repository
	base, oldLayer, curLayer, dockLayer regstoretest.Layer
}

func buildTree(t *testing.T) *tree {
	t.Helper()
	tr := &tree{dir: t.TempDir()}
	d, err := regstore.OpenDir(tr.dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	s, err := regstore.Open(d)
	require.NoError(t, err)
	tr.root = s
	tr.repoApp, err = s.Repository("team/app")
	require.NoError(t, err)
	tr.repoWeb, err = s.Repository("team/app/web")
	require.NoError(t, err)
	L := regstoretest.RandomLayer
	tr.base, tr.oldLayer, tr.curLayer, tr.dockLayer = L(1, 64), L(2, 64), L(3, 64), L(4, 64)
	img := func(layers ...regstoretest.Layer) regstoretest.Image { return regstoretest.Image{Layers: layers} }

	tr.old = regstoretest.Push(t, tr.repoApp, img(tr.base, tr.oldLayer), "v1")
	tr.cur = regstoretest.Push(t, tr.repoApp, img(tr.base, tr.curLayer), "v1", "latest")
	tr.dock = regstoretest.Push(t, tr.repoApp, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{tr.dockLayer}}, "docker")
	tr.child = regstoretest.Push(t, tr.repoApp, regstoretest.Image{Layers: []regstoretest.Layer{L(5, 64)}, Architecture: "arm64"})
	tr.index = regstoretest.PushIndex(t, tr.repoApp, "", []*regstore.Manifest{tr.child}, "multi")
	tr.sig = regstoretest.Push(t, tr.repoApp, regstoretest.Image{ArtifactType: "application/vnd.example.sig",
		Config: []byte("{}"), ConfigMediaType: v1.MediaTypeEmptyJSON, Layers: []regstoretest.Layer{L(6, 64)},
		Subject: ptr(tr.cur.Descriptor())})
	tr.loose, err = tr.repoApp.PutBlob(L(7, 64).Reader(), "", -1)
	require.NoError(t, err)
	tr.web = regstoretest.Push(t, tr.repoWeb, img(tr.base), "1.0")
	return tr
}

func ptr[T any](v T) *T { return &v }

// regstore runs the binary and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	require.Equal(t, 0, code, "regstore %s: stderr:\n%s", strings.Join(args, " "), errOut)
	return out
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func digests(ds ...digest.Digest) []any {
	out := []any{}
	for _, d := range ds {
		out = append(out, string(d))
	}
	return out
}

func refs(m *regstore.Manifest) []any {
	var ds []digest.Digest
	if c, ok := m.Config(); ok {
		ds = append(ds, c.Digest)
	}
	for _, l := range m.Layers() {
		ds = append(ds, l.Digest)
	}
	for _, c := range m.Children() {
		ds = append(ds, c.Digest)
	}
	return digests(ds...)
}

func TestInspectJSON(t *testing.T) {
	tr := buildTree(t)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(runOK(t, "inspect", "--json", tr.dir)), &got))
	assert.Equal(t, []string{"blobs", "repositories"}, keys(got))

	repos := got["repositories"].(map[string]any)
	assert.Equal(t, []string{"team/app", "team/app/web"}, keys(repos))
	app := repos["team/app"].(map[string]any)
	assert.Equal(t, []string{"layers", "manifests", "tags"}, keys(app))
	assert.Equal(t, map[string]any{"v1": string(tr.cur.Digest()), "latest": string(tr.cur.Digest()),
		"docker": string(tr.dock.Digest()), "multi": string(tr.index.Digest())}, app["tags"])

	manifests := app["manifests"].(map[string]any)
	want := map[*regstore.Manifest]string{tr.old: regstore.MediaTypeOCIManifest, tr.cur: regstore.MediaTypeOCIManifest,
		tr.dock: regstore.MediaTypeDockerManifest, tr.index: regstore.MediaTypeOCIIndex,
		tr.child: regstore.MediaTypeOCIManifest, tr.sig: regstore.MediaTypeOCIManifest}
	assert.Len(t, manifests, len(want))
	for m, mt := range want {
		entry, ok := manifests[string(m.Digest())].(map[string]any)
		require.True(t, ok, "manifest %s listed", m.Digest())
		wantKeys := []string{"mediaType", "references", "size"}
		if m == tr.sig {
			wantKeys = []string{"mediaType", "references", "size", "subject"}
			assert.Equal(t, string(tr.cur.Digest()), entry["subject"])
		}
		assert.Equal(t, wantKeys, keys(entry), "keys of %s", m.Digest())
		assert.Equal(t, mt, entry["mediaType"])
		assert.EqualValues(t, m.Size(), entry["size"])
		assert.Equal(t, refs(m), entry["references"], "references of %s (no subject)", m.Digest())
	}
	assert.Equal(t, digests(tr.child.Digest()), manifests[string(tr.index.Digest())].(map[string]any)["references"])

	var layers []digest.Digest
	for d, err := range tr.repoApp.Layers() {
		require.NoError(t, err)
		layers = append(layers, d)
	}
	assert.Equal(t, digests(layers...), app["layers"])
	assert.Contains(t, app["layers"], string(tr.loose.Digest()))

	web := repos["team/app/web"].(map[string]any)
	assert.Equal(t, map[string]any{"1.0": string(tr.web.Digest())}, web["tags"])
	assert.Len(t, web["layers"], 2) // config and base

	blobs := got["blobs"].(map[string]any)
	n := 0
	for d, err := range tr.root.Blobs() {
		require.NoError(t, err)
		b, err := tr.root.Blob(d)
		require.NoError(t, err)
		assert.EqualValues(t, b.Size(), blobs[string(d)], "size of %s", d)
		n++
	}
	assert.Len(t, blobs, n)
	assert.EqualValues(t, tr.loose.Size(), blobs[string(tr.loose.Digest())])

	// The v2 directory itself works as ROOT and gives the same answer.
	v2 := filepath.Join(tr.dir, filepath.FromSlash(regstore.DefaultLayoutRoot))
	var again map[string]any
	require.NoError(t, json.Unmarshal([]byte(runOK(t, "inspect", v2, "--json")), &again))
	assert.Equal(t, got, again)
}

func TestInspectHuman(t *testing.T) {
	tr := buildTree(t)
	out := runOK(t, "inspect", tr.dir)
	for _, want := range []string{
		"team/app\n",
		"team/app/web\n",
		"v1 -> " + string(tr.cur.Digest()),
		"1.0 -> " + string(tr.web.Digest()),
		fmt.Sprintf("%s  %s  %d B  [untagged]", tr.old.Digest(), regstore.MediaTypeOCIManifest, tr.old.Size()),
		fmt.Sprintf("%s  %s  %d B  [latest, v1]", tr.cur.Digest(), regstore.MediaTypeOCIManifest, tr.cur.Size()),
		"child   " + string(tr.child.Digest()),
		"subject " + string(tr.cur.Digest()),
		"2 repositories, 5 tags, 7 manifests;",
	} {
		assert.Contains(t, out, want)
	}
}

func TestInspectEmptyAndMissing(t *testing.T) {
	empty := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(empty, "docker/registry/v2"), 0o755))
	out := runOK(t, "inspect", "--json", empty)
	assert.JSONEq(t, `{"repositories": {}, "blobs": {}}`, out)
	_, errOut, code := runCLI(t, "inspect", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no such file or directory")
}

// snapshot describes every file and directory below dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:])
		}
		out[p] = desc
		return nil
	}))
	return out
}

type planJSON struct {
	Blobs      []digest.Digest            `json:"blobs"`
	LayerLinks map[string][]digest.Digest `json:"layerLinks"`
	Manifests  map[string][]digest.Digest `json:"manifests"`
	Bytes      int64                      `json:"bytes"`
}

func gcJSON(t *testing.T, args ...string) (planJSON, map[string]any) {
	t.Helper()
	out := runOK(t, append([]string{"gc", "--json"}, args...)...)
	var p planJSON
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	return p, raw
}

func TestGCDryRun(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)

	// Everything is fresh: the default grace window keeps it all.
	p, raw := gcJSON(t, "--dry-run", "--delete-untagged", tr.dir)
	for _, k := range []string{"blobs", "layerLinks", "manifests", "bytes"} {
		assert.Contains(t, raw, k)
	}
	assert.Equal(t, []any{}, raw["blobs"])
	assert.Empty(t, p.LayerLinks)
	assert.Empty(t, p.Manifests)

	// Without the window, only the loose blob goes.
	p, _ = gcJSON(t, "--dry-run", "--grace=-1s", tr.dir)
	assert.Equal(t, []digest.Digest{tr.loose.Digest()}, p.Blobs)
	assert.Equal(t, map[string][]digest.Digest{"team/app": {tr.loose.Digest()}}, p.LayerLinks)
	assert.Empty(t, p.Manifests)
	assert.Equal(t, tr.loose.Size(), p.Bytes)

	// With --delete-untagged: the old image too (its manifest, config and
	// own layer); the index child and the referrer stay.
	p, _ = gcJSON(t, "--dry-run", "--grace", "-1s", "--delete-untagged", "--workers", "2", tr.dir)
	assert.Equal(t, map[string][]digest.Digest{"team/app": {tr.old.Digest()}}, p.Manifests)
	oldConfig, _ := tr.old.Config()
	want := []digest.Digest{tr.loose.Digest(), tr.old.Digest(), oldConfig.Digest, tr.old.Layers()[1].Digest}
	slices.Sort(want)
	assert.Equal(t, want, p.Blobs)
	var bytes int64
	for _, d := range want {
		b, err := tr.root.Blob(d)
		require.NoError(t, err)
		bytes += b.Size()
	}
	assert.Equal(t, bytes, p.Bytes)
	assert.Equal(t, sorted([]digest.Digest{tr.loose.Digest(), oldConfig.Digest, tr.old.Layers()[1].Digest}), sorted(p.LayerLinks["team/app"]))

	human := runOK(t, "gc", "--dry-run", "--grace=-1s", "--delete-untagged", tr.dir)
	for _, s := range []string{
		"(dry run)",
		"would remove 1 untagged manifest in 1 repository\n  team/app@" + string(tr.old.Digest()),
		"would remove 3 layer links in 1 repository",
		fmt.Sprintf("would remove 4 blobs, %s", humanBytes(bytes)),
		"  " + string(tr.loose.Digest()),
	} {
		assert.Contains(t, human, s)
	}

	assert.Equal(t, before, snapshot(t, tr.dir), "gc --dry-run changed the tree")
}

func sorted(ds []digest.Digest) []digest.Digest {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}

func TestGCApply(t *testing.T) {
	tr := buildTree(t)
	dry, _ := gcJSON(t, "--dry-run", "--grace=-1s", "--delete-untagged", tr.dir)
	done, raw := gcJSON(t, "--grace=-1s", "--delete-untagged", tr.dir)
	assert.Equal(t, false, raw["dryRun"])
	assert.Equal(t, dry, done)

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(runOK(t, "inspect", "--json", tr.dir)), &got))
	app := got["repositories"].(map[string]any)["team/app"].(map[string]any)
	manifests := app["manifests"].(map[string]any)
	assert.NotContains(t, manifests, string(tr.old.Digest()))
	for _, m := range []*regstore.Manifest{tr.cur, tr.dock, tr.index, tr.child, tr.sig} {
		assert.Contains(t, manifests, string(m.Digest()))
	}
	blobs := got["blobs"].(map[string]any)
	for _, d := range done.Blobs {
		assert.NotContains(t, blobs, string(d))
	}
	assert.NotContains(t, app["layers"], string(tr.loose.Digest()))
	// Every tag still resolves.
	for tag, err := range tr.repoApp.Tags() {
		require.NoError(t, err)
		_, err := tag.Resolve()
		assert.NoError(t, err, tag.Name())
	}

	// A second collection finds nothing.
	again, _ := gcJSON(t, "--dry-run", "--grace=-1s", "--delete-untagged", tr.dir)
	assert.Empty(t, again.Blobs)
	assert.Empty(t, again.Manifests)
	assert.Empty(t, again.LayerLinks)
}

func TestGCBrokenTree(t *testing.T) {
	tr := buildTree(t)
	// Replace a manifest's data with something that is not a manifest.
	p := filepath.Join(tr.dir, filepath.FromSlash(tr.root.Layout().BlobData(tr.cur.Digest())))
	require.NoError(t, os.WriteFile(p, []byte("not json"), 0o644))
	out, errOut, code := runCLI(t, "gc", "--dry-run", "--grace=-1s", tr.dir)
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "regstore gc: ")
}

func TestUsageAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	tree := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "docker/registry/v2"), 0o755))
	for _, c := range []struct {
		args       []string
		code       int
		stdout     string // substring
		stderr     string // substring
		notStdout  string
		emptyOther bool
	}{
		{args: nil, code: 2, stderr: "Usage:"},
		{args: []string{"--help"}, code: 0, stdout: "regstore gc"},
		{args: []string{"help"}, code: 0, stdout: "regstore inspect"},
		{args: []string{"help"}, code: 0, stdout: "import-docker-archive  import"},
		{args: []string{"help", "gc"}, code: 0, stdout: "--delete-untagged"},
		{args: []string{"help", "nope"}, code: 2, stderr: `unknown command "nope"`},
		{args: []string{"bogus"}, code: 2, stderr: `unknown command "bogus"`},
		{args: []string{"inspect"}, code: 2, stderr: "want ROOT [REPO...], got 0 arguments"},
		{args: []string{"inspect", dir, dir}, code: 2, stderr: "is not a registry storage tree"},
		{args: []string{"inspect", "--bogus", dir}, code: 2, stderr: "flag provided but not defined: --bogus"},
		{args: []string{"inspect", "--help"}, code: 0, stdout: "Usage: regstore inspect [--json] ROOT", notStdout: "cpuprofile"},
		{args: []string{"gc", "-h"}, code: 0, stdout: "--grace duration", notStdout: "cpuprofile"},
		{args: []string{"gc", "--grace", "0", dir}, code: 2, stderr: "--grace 0 is ambiguous"},
		{args: []string{"gc", "--grace", "soon", dir}, code: 2, stderr: `--grace: "soon" is not a duration`},
		{args: []string{"gc", "--workers", "0", dir}, code: 2, stderr: "--workers"},
		{args: []string{"gc", "--dry-run", filepath.Join(dir, "missing")}, code: 2, stderr: "no such file"},
		{args: []string{"gc", "--dry-run", "--", tree}, code: 0, stdout: "would remove 0 blobs"},
		{args: []string{"gc", "--dry-run", "--exit-code", tree}, code: 0, stdout: "would remove 0 blobs"},
		{args: []string{"gc", "--dry-run", dir}, code: 2, stderr: "is not a registry storage tree"},
		{args: []string{"gc", "--drop-orphan-referrers", dir}, code: 2, stderr: "--drop-orphan-referrers needs --delete-untagged"},
		{args: []string{"help", "check"}, code: 0, stdout: "Exit status: 0 when the tree is clean"},
		{args: []string{"du", "--help"}, code: 0, stdout: `"freedBytes"`},
		{args: []string{"rm", "-h"}, code: 0, stdout: "Usage: regstore rm [--dry-run] [--json] ROOT REPO[:TAG|@DIGEST]..."},
		{args: []string{"copy", "--help"}, code: 0, stdout: `"blobsSkipped"`},
		{args: []string{"import-oci", "--help"}, code: 0, stdout: `"refName"`},
		{args: []string{"import-oci", dir, "x/y"}, code: 2, stderr: "want ROOT REPO DIR, got 2 arguments"},
		{args: []string{"export-oci", "--help"}, code: 0, stdout: "--untagged"},
		{args: []string{"import-docker-archive", "--help"}, code: 0, stdout: "rootfs.diff.tar"},
		{args: []string{"import-skopeo-dir", "--help"}, code: 0, stdout: "ROOT REPO[:TAG] DIR"},
		{args: []string{"purge-uploads", "--help"}, code: 0, stdout: "--older-than duration"},
		{args: []string{"inspect", "--progress", dir}, code: 2, stderr: "flag provided but not defined: --progress"},
	} {
		out, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, c.code, code, "regstore %q: stderr %s", c.args, errOut)
		assert.Contains(t, out, c.stdout, "stdout of %q", c.args)
		assert.Contains(t, errOut, c.stderr, "stderr of %q", c.args)
		if c.notStdout != "" {
			assert.NotContains(t, out, c.notStdout)
		}
		if c.code == 2 {
			assert.Empty(t, out, "stdout of %q", c.args)
		}
	}
}

func TestCPUProfileFlag(t *testing.T) {
	tr := buildTree(t)
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	runOK(t, "gc", "--dry-run", "--cpuprofile", prof, "--memprofile", prof+".mem", tr.dir)
	for _, p := range []string{prof, prof + ".mem"} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Positive(t, fi.Size())
	}
}

// Interrupting stops the command with status 130 (run in-process, with a
// context that is already cancelled, as Ctrl-C would cancel it).
func TestInterrupted(t *testing.T) {
	tr := buildTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{{"gc", "--grace=-1s", "--delete-untagged", tr.dir}, {"inspect", tr.dir}} {
		var stdout, stderr bytes.Buffer
		before := snapshot(t, tr.dir)
		assert.Equal(t, 130, run(ctx, args, &stdout, &stderr), "%q: %s", args, stderr.String())
		assert.Contains(t, stderr.String(), "interrupted")
		assert.Equal(t, before, snapshot(t, tr.dir))
	}
}

func TestGeneratedTree(t *testing.T) {
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	require.NoError(t, err)
	st, err := regstoretest.Generate(s, regstoretest.GenerateOptions{Repositories: 4, TagsPerRepo: 3, ManifestsPerRepo: 4,
		LayersPerManifest: 2, SharedFraction: 0.5, UntaggedFraction: 0.25, BlobSize: 32, Seed: 7})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, regstoretest.WriteTree(mem, dir))
	p, _ := gcJSON(t, "--dry-run", "--grace=-1s", dir)
	assert.Empty(t, p.Blobs)
	p, _ = gcJSON(t, "--dry-run", "--grace=-1s", "--delete-untagged", dir)
	assert.Equal(t, st.Untagged, p.Manifests)

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(runOK(t, "inspect", "--json", dir)), &got))
	assert.Len(t, got["repositories"], st.Repositories)
	assert.Len(t, got["blobs"], st.Blobs)
}

// execCommand is the binary as an *exec.Cmd.
func execCommand(args ...string) *exec.Cmd { return exec.Command(binary, args...) }

// gc --exit-code: status 1 when the plan removes something, also with
// --json, whose output is still printed.
func TestGCExitCode(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	p := runJSON(t, 1, "gc", "--dry-run", "--exit-code", "--grace=-1s", "--json", tr.dir)
	assert.Equal(t, digests(tr.loose.Digest()), p["blobs"])
	out, _, code := runCLI(t, "gc", "--dry-run", "--exit-code", "--grace=-1s", tr.dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "would remove 1 blob, ")
	assert.Equal(t, before, snapshot(t, tr.dir))

	runOK(t, "gc", "--grace=-1s", tr.dir)
	runJSON(t, 0, "gc", "--dry-run", "--exit-code", "--grace=-1s", "--json", tr.dir)
}

// Trees written by real registries (testdata/registry-*.txtar, with what
// the registry's API reported in .expect.json): inspect lists the catalog,
// check and du read them.
func TestRegistryWrittenTrees(t *testing.T) {
	for _, version := range []string{"v2.8", "v3"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, treearchive.LoadDir(filepath.Join("..", "..", "testdata", "registry-"+version+".txtar"), dir))
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "registry-"+version+".expect.json"))
			require.NoError(t, err)
			var expect struct {
				Catalog []string                     `json:"catalog"`
				Tags    map[string]map[string]string `json:"tags"`
			}
			require.NoError(t, json.Unmarshal(b, &expect))
			require.NotEmpty(t, expect.Catalog)

			got := runJSON(t, 0, "inspect", "--json", dir)
			repos := got["repositories"].(map[string]any)
			assert.ElementsMatch(t, expect.Catalog, keys(repos))
			for repo, tags := range expect.Tags {
				want := map[string]any{}
				for tag, d := range tags {
					want[tag] = d
				}
				assert.Equal(t, want, repos[repo].(map[string]any)["tags"], "tags of %s", repo)
			}

			du := runJSON(t, 0, "du", "--json", dir)
			var names []string
			for _, r := range du["repositories"].([]any) {
				names = append(names, r.(map[string]any)["name"].(string))
			}
			assert.Equal(t, expect.Catalog, names, "du lists the repositories in catalog order")

			// The registry leaves upload sessions and deleted revisions'
			// data behind; nothing else is a problem.
			before := snapshot(t, dir)
			chk := runJSON(t, -1, "check", "--json", dir)
			for _, k := range kindsOf(t, chk["problems"]) {
				assert.Contains(t, []string{"upload-stale", "upload-malformed", "blob-orphan"}, k)
			}
			assert.Equal(t, before, snapshot(t, dir), "check changed the tree")
		})
	}
}

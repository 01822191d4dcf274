package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLs(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	assert.Equal(t, "team/app\nteam/app/web\n", runOK(t, "ls", tr.dir))
	assert.Equal(t, map[string]any{"repositories": []any{"team/app", "team/app/web"}}, runJSON(t, 0, "ls", "--json", tr.dir))

	got := runJSON(t, 0, "ls", "--json", tr.dir, "team/app")
	assert.Equal(t, "team/app", got["repository"])
	tags := map[string]map[string]any{}
	for _, tg := range got["tags"].([]any) {
		tg := tg.(map[string]any)
		tags[tg["tag"].(string)] = tg
	}
	assert.Equal(t, []string{"docker", "latest", "multi", "v1"}, keys(anyMap(tags)))
	cfg, _ := tr.cur.Config()
	want := tr.cur.Size() + cfg.Size + tr.cur.Layers()[0].Size + tr.cur.Layers()[1].Size
	assert.Equal(t, string(tr.cur.Digest()), tags["latest"]["digest"])
	assert.Equal(t, regstore.MediaTypeOCIManifest, tags["latest"]["mediaType"])
	assert.Equal(t, float64(want), tags["latest"]["size"])
	childCfg, _ := tr.child.Config()
	assert.Equal(t, float64(tr.index.Size()+tr.child.Size()+childCfg.Size+tr.child.Layers()[0].Size), tags["multi"]["size"],
		"an index counts its children")
	pushed, err := time.Parse(time.RFC3339, tags["v1"]["pushed"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), pushed, time.Minute)

	human := runOK(t, "ls", tr.dir, "team/app")
	lines := strings.Split(strings.TrimSpace(human), "\n")
	require.Len(t, lines, 5)
	assert.Regexp(t, `^TAG +DIGEST +SIZE +PUSHED$`, lines[0])
	assert.Regexp(t, `^latest +`+string(tr.cur.Digest())+` +[0-9.]+ K?i?B +\d{4}-\d\d-\d\dT`, lines[2])

	assert.Equal(t, before, snapshot(t, tr.dir), "ls wrote nothing")

	// A broken tag is listed with why.
	require.NoError(t, regstoretest.TagWithoutManifest(tr.root, "team/app", "docker"))
	got = runJSON(t, 0, "ls", "--json", tr.dir, "team/app")
	var gone map[string]any
	for _, tg := range got["tags"].([]any) {
		if tg.(map[string]any)["tag"] == "docker" {
			gone = tg.(map[string]any)
		}
	}
	require.NotNil(t, gone)
	assert.NotEmpty(t, gone["error"])
	assert.NotContains(t, gone, "size")

	_, errOut, code := runCLI(t, "ls", tr.dir, "no/such")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no/such")
	assert.Contains(t, errOut, "not exist")
	_, errOut, code = runCLI(t, "ls", tr.dir, "Bad_Name!")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "invalid repository name")
}

func anyMap[V any](m map[string]V) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestManifestCommand(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	assert.Equal(t, string(tr.cur.Bytes()), runOK(t, "manifest", tr.dir, "team/app:latest"))
	assert.Equal(t, string(tr.old.Bytes()), runOK(t, "manifest", tr.dir, "team/app@"+string(tr.old.Digest())))
	assert.Equal(t, tr.cur.Digest(), digest.FromString(runOK(t, "manifest", tr.dir, "team/app:v1")), "the stored bytes, exactly")

	got := runJSON(t, 0, "manifest", "--json", tr.dir, "team/app:docker")
	assert.Equal(t, "team/app", got["repository"])
	assert.Equal(t, "docker", got["tag"])
	assert.Equal(t, string(tr.dock.Digest()), got["digest"])
	assert.Equal(t, regstore.MediaTypeDockerManifest, got["mediaType"])
	assert.Equal(t, float64(tr.dock.Size()), got["size"])
	var m map[string]any
	require.NoError(t, json.Unmarshal(tr.dock.Bytes(), &m))
	assert.Equal(t, m, got["manifest"])

	for _, c := range []struct{ ref, stderr string }{
		{"team/app", "want REPO:TAG or REPO@DIGEST"},
		{"team/app:nope", "no such file"},
		{"team/app/web@" + string(tr.cur.Digest()), "no such file"},
		{"team/app@sha256:nothex", "invalid digest"},
	} {
		out, errOut, code := runCLI(t, "manifest", tr.dir, c.ref)
		assert.Equal(t, 2, code, c.ref)
		assert.Empty(t, out, c.ref)
		assert.Contains(t, errOut, c.stderr, c.ref)
		assert.LessOrEqual(t, strings.Count(errOut, "/_manifests/"), 1, "the path once: %s", errOut)
	}
	assert.Equal(t, before, snapshot(t, tr.dir))
}

func TestBlobCommand(t *testing.T) {
	tr := buildTree(t)
	layer := tr.cur.Layers()[1].Digest
	assert.Equal(t, string(tr.curLayer.Compressed), runOK(t, "blob", tr.dir, string(layer)))
	assert.Equal(t, string(tr.curLayer.Compressed), runOK(t, "blob", tr.dir, "team/app@"+string(layer)))
	got := runJSON(t, 0, "blob", "--json", tr.dir, "team/app@"+string(layer))
	assert.Equal(t, map[string]any{"digest": string(layer), "size": float64(len(tr.curLayer.Compressed)),
		"path": tr.root.Layout().BlobData(layer), "repository": "team/app"}, got)

	// The layer is not in team/app/web: a pull from it would fail.
	_, errOut, code := runCLI(t, "blob", tr.dir, "team/app/web@"+string(layer))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no such file")

	// Corrupt data is written, then the command fails.
	require.NoError(t, regstoretest.CorruptBlob(tr.root, layer))
	out, errOut, code := runCLI(t, "blob", tr.dir, string(layer))
	assert.Equal(t, 2, code)
	assert.NotEmpty(t, out)
	assert.Contains(t, errOut, "digest mismatch")
}

func TestInspectOneRepository(t *testing.T) {
	tr := buildTree(t)
	got := runJSON(t, 0, "inspect", "--json", tr.dir, "team/app/web")
	repos := got["repositories"].(map[string]any)
	assert.Equal(t, []string{"team/app/web"}, keys(repos))
	blobs := got["blobs"].(map[string]any)
	cfg, _ := tr.web.Config()
	assert.ElementsMatch(t, []string{string(tr.web.Digest()), string(cfg.Digest), string(tr.web.Layers()[0].Digest)}, keys(blobs))
	human := runOK(t, "inspect", tr.dir, "team/app/web")
	assert.True(t, strings.HasPrefix(human, "team/app/web\n"), human)
	assert.Contains(t, human, "\n1 repository, 1 tag, 1 manifest; 3 blobs, ")
	all := runOK(t, "inspect", tr.dir)
	assert.Greater(t, strings.Count(all, "\n"), strings.Count(human, "\n"))
}

// TestEveryCommandDocumented: every command is in docs/cli.md's table, and
// its JSON output has a section there and in its --help.
func TestEveryCommandDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	require.NoError(t, err)
	doc := string(b)
	var jsonHeads []string // the "**`cmd --json`**" headings of the JSON section
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "**`") {
			jsonHeads = append(jsonHeads, line)
		}
	}
	for _, c := range commands {
		assert.True(t, strings.Contains(doc, "| `regstore "+c.name+" "), "docs/cli.md lists %s", c.name)
		if c.name == "serve" { // a server: an access log, no JSON
			continue
		}
		documented := false
		for _, h := range jsonHeads {
			documented = documented || strings.Contains(h, "`"+c.name+"`") || strings.Contains(h, "`"+c.name+" --json`")
		}
		assert.True(t, documented, "docs/cli.md documents %s --json", c.name)
		var out bytes.Buffer
		require.Equal(t, exitOK, run(context.Background(), []string{c.name, "--help"}, &out, &out), c.name)
		assert.Contains(t, out.String(), "With --json, prints", "%s --help documents its JSON", c.name)
		assert.Contains(t, out.String(), "Exit status: ", c.name)
	}
}

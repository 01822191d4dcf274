package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v1Dir writes the generator's v1 tree into a new directory.
func v1Dir(t *testing.T) (string, *regstoretest.V1Tree) {
	t.Helper()
	dir := t.TempDir()
	d, err := regstore.OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	tree, err := regstoretest.WriteV1Tree(d, ".")
	require.NoError(t, err)
	return dir, tree
}

func v1Statuses(t *testing.T, got map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, x := range got["tags"].([]any) {
		tg := x.(map[string]any)
		out[tg["repository"].(string)+":"+tg["tag"].(string)] = tg["status"].(string)
	}
	return out
}

func TestImportV1(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
	v1, _ := v1Dir(t)
	root := filepath.Join(t.TempDir(), "root")

	// Dry run: nothing is written, not even ROOT.
	got := runJSON(t, 1, "import-v1", "--dry-run", "--json", root, v1)
	assert.Equal(t, []string{"images", "names", "stats", "tags"}, keys(got))
	assert.Equal(t, "would-convert", v1Statuses(t, got)["library/ubuntu:latest"])
	assert.EqualValues(t, 6, got["stats"].(map[string]any)["wouldConvert"])
	assert.NoDirExists(t, root)

	got = runJSON(t, 1, "import-v1", "--json", root, v1)
	st := v1Statuses(t, got)
	assert.Equal(t, "converted", st["library/ubuntu:latest"])
	assert.Equal(t, "converted", st["myorg/MyApp:latest"])
	assert.Equal(t, "skipped", st["library/broken:missing"])
	assert.Equal(t, "skipped", st["library/corrupt:bad"])
	stats := got["stats"].(map[string]any)
	assert.EqualValues(t, 5, stats["converted"])
	assert.EqualValues(t, 3, stats["skipped"])
	assert.EqualValues(t, 4, stats["layers"])
	names := got["names"].([]any)
	require.Len(t, names, 1)
	assert.Equal(t, "myorg/myapp", names[0].(map[string]any)["target"])

	// The registry's view: the tag is there, and carries the v1 push time.
	r := inspectRepo(t, root, "ubuntu")
	assert.Contains(t, r["tags"], "latest")
	fi, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories/ubuntu/_manifests/tags/latest/current/link"))
	require.NoError(t, err)
	assert.Equal(t, time.Unix(1412180000, 0).UTC(), fi.ModTime().UTC())

	// The converted tree is clean (the skipped tags left nothing behind).
	_, errOut, checkCode := runCLI(t, "check", root)
	assert.Equal(t, 0, checkCode, "check: %s", errOut)

	// Again: nothing new.
	// (Directories may change: the corrupt layer is read again, into a
	// temporary file that is then removed.)
	before := files(snapshot(t, root))
	got = runJSON(t, 1, "import-v1", "--json", root, v1)
	assert.EqualValues(t, 5, got["stats"].(map[string]any)["unchanged"])
	assert.EqualValues(t, 0, got["stats"].(map[string]any)["converted"])
	assert.Equal(t, before, files(snapshot(t, root)))

	// For a human.
	out, _, code := runCLI(t, "import-v1", root, v1)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "renamed myorg/MyApp -> myorg/myapp (v2 refuses the v1 name)\n")
	assert.Contains(t, out, "unchanged library/ubuntu:latest (")
	assert.Contains(t, out, "skipped library/partial:wip (")
	assert.Contains(t, out, "tags: 0 converted, 5 unchanged, 0 would convert, 3 skipped\n")

	// OCI, uncompressed: converted again, other digests.
	got2 := runJSON(t, 1, "import-v1", "--json", "--oci", "--uncompressed", root, v1)
	assert.EqualValues(t, 5, got2["stats"].(map[string]any)["converted"])
}

func TestImportV1Clean(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
	// A v1 tree without bad input converts with exit status 0.
	v1, _ := v1Dir(t)
	for _, repo := range []string{"broken", "partial", "corrupt"} {
		require.NoError(t, os.RemoveAll(filepath.Join(v1, "repositories/library", repo)))
	}
	root := t.TempDir()
	got := runJSON(t, 0, "import-v1", "--json", "--keep-library", root, v1)
	assert.Equal(t, "library/ubuntu", v1Statuses2(got)["library/ubuntu:latest"])
}

// files keeps the files of a snapshot.
func files(snap map[string]string) map[string]string {
	out := map[string]string{}
	for p, desc := range snap {
		if strings.HasPrefix(desc, "-") {
			out[p] = desc
		}
	}
	return out
}

func v1Statuses2(got map[string]any) map[string]string {
	out := map[string]string{}
	for _, x := range got["tags"].([]any) {
		tg := x.(map[string]any)
		out[tg["repository"].(string)+":"+tg["tag"].(string)] = tg["target"].(string)
	}
	return out
}

func TestImportV1Usage(t *testing.T) {
	_, errOut, code := runCLI(t, "import-v1", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want ROOT V1_PATH")

	_, errOut, code = runCLI(t, "import-v1", t.TempDir(), t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "not a v1 storage path")

	_, _, code = runCLI(t, "import-v1", "--workers", "-1", t.TempDir(), t.TempDir())
	assert.Equal(t, 2, code)

	out, _, code := runCLI(t, "import-v1", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Usage: regstore import-v1 [--dry-run] [--oci] [--uncompressed]")
	assert.Contains(t, out, "Exit status: 0 when every tag was converted")
}

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDeadline runs the binary under a deadline, so that a command blocked
// for ever fails the test instead of hanging it; it returns stderr and the
// exit code (-1 when the deadline killed it).
func runDeadline(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("regstore %q still running after 20 s (blocked)", args)
		return stderr.String(), -1
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stderr.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return stderr.String(), 0
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	require.NoError(t, os.Remove(p))
	require.NoError(t, syscall.Mkfifo(p, 0o644))
}

// TestNamedPipesInTheTree: a FIFO in place of a link or of blob data makes
// every command fail promptly instead of blocking on it.
func TestNamedPipesInTheTree(t *testing.T) {
	for _, victim := range []string{"tag link", "revision link", "manifest data", "layer data"} {
		t.Run(victim, func(t *testing.T) {
			tr := buildTree(t)
			l := tr.root.Layout()
			p := map[string]string{
				"tag link":      l.TagCurrent("team/app", "latest"),
				"revision link": l.RevisionLink("team/app", tr.cur.Digest()),
				"manifest data": l.BlobData(tr.cur.Digest()),
				"layer data":    l.BlobData(digest.FromBytes(tr.curLayer.Compressed)),
			}[victim]
			mkfifo(t, filepath.Join(tr.dir, filepath.FromSlash(p)))
			for _, args := range [][]string{
				{"inspect", tr.dir},
				{"check", tr.dir},
				{"du", tr.dir},
				{"gc", "--dry-run", tr.dir},
				{"gc", tr.dir},
				{"rm", tr.dir, "team/app:latest"},
			} {
				errOut, code := runDeadline(t, args...)
				require.NotEqual(t, -1, code, "%q blocked", args)
				switch {
				case victim == "layer data":
					// Only a full verification reads layer data; whether
					// check reports such data is the business of check.
				case args[0] == "gc":
					// A collector cannot mark through what it cannot read.
					assert.Equal(t, 2, code, "%q: %s", args, errOut)
				case args[0] == "check":
					assert.Contains(t, []int{1, 2}, code, "%q: %s", args, errOut)
				}
				if code != 0 {
					assert.NotContains(t, errOut, "panic", "%q", args)
				}
			}
		})
	}
}

// TestNamedPipesInImportSources: a FIFO as an OCI layout's index.json or a
// skopeo dir's version makes the import fail promptly, with nothing
// written.
func TestNamedPipesInImportSources(t *testing.T) {
	tr := buildTree(t)
	src := filepath.Join(t.TempDir(), "oci")
	runOK(t, "export-oci", tr.dir, "team/app", src)
	mkfifo(t, filepath.Join(src, "index.json"))
	root := filepath.Join(t.TempDir(), "root")
	errOut, code := runDeadline(t, "import-oci", root, "x/y", src)
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "not a regular file")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), tr.cur.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "version"), nil, 0o644))
	mkfifo(t, filepath.Join(dir, "version"))
	errOut, code = runDeadline(t, "import-skopeo-dir", root, "x/y:v1", dir)
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "not a regular file")
}

// TestSymlinkedLayoutRoot: docker/ (or docker/registry) a symbolic link to
// another directory, as when the data lives on another disk, works for
// every command; a symbolic link inside the layout is still refused.
func TestSymlinkedLayoutRoot(t *testing.T) {
	for _, link := range []string{"docker", "docker/registry", "docker/registry/v2"} {
		t.Run(link, func(t *testing.T) {
			tr := buildTree(t)
			elsewhere := filepath.Join(t.TempDir(), "disk")
			require.NoError(t, os.MkdirAll(filepath.Dir(elsewhere), 0o755))
			from := filepath.Join(tr.dir, filepath.FromSlash(link))
			require.NoError(t, os.Rename(from, elsewhere))
			require.NoError(t, os.Symlink(elsewhere, from))

			out := runOK(t, "inspect", tr.dir)
			assert.Contains(t, out, "team/app")
			runOK(t, "check", tr.dir)
			runOK(t, "du", tr.dir)
			runOK(t, "gc", tr.dir)
			runOK(t, "rm", tr.dir, "team/app:docker")
			runOK(t, "check", tr.dir)

			// Inside the layout a symbolic link stays refused.
			repos := filepath.Join(elsewhere, "repositories")
			if link == "docker" {
				repos = filepath.Join(elsewhere, "registry", "v2", "repositories")
			} else if link == "docker/registry" {
				repos = filepath.Join(elsewhere, "v2", "repositories")
			}
			outside := filepath.Join(t.TempDir(), "outside")
			require.NoError(t, os.Rename(filepath.Join(repos, "team", "app", "web"), outside))
			require.NoError(t, os.Symlink(outside, filepath.Join(repos, "team", "app", "web")))
			_, code := runDeadline(t, "rm", tr.dir, "team/app/web:1.0")
			assert.NotEqual(t, 0, code, "rm through a symbolic link inside the layout")
			_, err := os.Stat(filepath.Join(outside, "_manifests", "tags", "1.0", "current", "link"))
			assert.NoError(t, err, "the tag behind the inner link is untouched")
		})
	}
	// A new tree under a symlinked docker/ that is still empty.
	root := t.TempDir()
	disk := t.TempDir()
	require.NoError(t, os.Symlink(disk, filepath.Join(root, "docker")))
	dir, layoutRoot, err := regstore.FindLayout(root)
	require.NoError(t, err)
	assert.Equal(t, disk, dir)
	assert.Equal(t, "registry/v2", layoutRoot)
}

// TestImportNothingSelected: an archive whose images are all named for
// other repositories, or import-oci --tag nosuch=t, writes nothing and
// exits 2, unless --allow-empty; check is clean after every import.
func TestImportNothingSelected(t *testing.T) {
	archive, _, _ := dockerArchive(t, "other/one:v1")
	root := filepath.Join(t.TempDir(), "root")
	// A lone image keeps its tag whatever its repository.
	out := runOK(t, "import-docker-archive", root, "legacy/app", archive)
	assert.Contains(t, out, "tagged legacy/app:v1")
	runOK(t, "check", root)
	before := snapshot(t, root)

	// Two images, both for other repositories.
	two := twoImageArchive(t)
	errOut, code := runDeadline(t, "import-docker-archive", root, "legacy/app", two)
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "nothing to import")
	assert.Equal(t, before, snapshot(t, root), "nothing written")
	out = runOK(t, "import-docker-archive", "--allow-empty", root, "legacy/app", two)
	assert.Contains(t, out, "imported 0 manifests")
	assert.Equal(t, before, snapshot(t, root), "nothing written")

	src := filepath.Join(t.TempDir(), "oci")
	runOK(t, "export-oci", root, "legacy/app", src)
	errOut, code = runDeadline(t, "import-oci", "--tag", "nosuch=t", root, "x/y", src)
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "nothing to import")
	assert.Equal(t, before, snapshot(t, root), "nothing written")
	runOK(t, "import-oci", "--allow-empty", "--tag", "nosuch=t", root, "x/y", src)
	runOK(t, "check", root)
}

// twoImageArchive is a legacy docker archive of two images (one layer
// each) named for other repositories.
func twoImageArchive(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	var manifest []map[string]any
	for i, name := range []string{"other/one:v1", "other/two:v2"} {
		l := regstoretest.NewLayer(map[string]string{"file": name})
		zr, err := gzip.NewReader(bytes.NewReader(l.Compressed))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err)
		config, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "created": fmt.Sprint(i),
			"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{l.DiffID}}})
		require.NoError(t, err)
		lp := l.DiffID.Encoded() + "/layer.tar"
		add(lp, raw)
		cp := digest.FromBytes(config).Encoded() + ".json"
		add(cp, config)
		manifest = append(manifest, map[string]any{"Config": cp, "RepoTags": []string{name}, "Layers": []string{lp}})
	}
	b, err := json.Marshal(manifest)
	require.NoError(t, err)
	add("manifest.json", b)
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "two.tar")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

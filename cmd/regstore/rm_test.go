package main

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tagNames(t *testing.T, r *regstore.Repository) []string {
	t.Helper()
	names := []string{}
	for tg, err := range r.Tags() {
		require.NoError(t, err)
		names = append(names, tg.Name())
	}
	return names
}

func TestRmTag(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	out := runOK(t, "rm", "--dry-run", tr.dir, "team/app:v1")
	assert.Equal(t, "would delete tag team/app:v1 (pointed at "+string(tr.cur.Digest())+")\nblob data stays until \"regstore gc\"\n", out)
	assert.Equal(t, before, snapshot(t, tr.dir), "rm --dry-run changed the tree")

	got := runJSON(t, 0, "rm", "--json", tr.dir, "team/app:v1")
	assert.Equal(t, map[string]any{"dryRun": false, "deleted": []any{map[string]any{
		"ref": "team/app:v1", "kind": "tag", "repository": "team/app", "tag": "v1", "digest": string(tr.cur.Digest())}}}, got)
	assert.Equal(t, []string{"docker", "latest", "multi"}, tagNames(t, tr.repoApp))
	_, err := tr.repoApp.Manifest(tr.cur.Digest())
	assert.NoError(t, err, "the manifest stays")

	_, errOut, code := runCLI(t, "rm", tr.dir, "team/app:v1")
	assert.Equal(t, 2, code, "a second delete finds nothing")
	assert.Contains(t, errOut, "no such file or directory")
}

func TestRmManifest(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	ref := "team/app@" + string(tr.cur.Digest())
	got := runJSON(t, 0, "rm", "--dry-run", "--json", tr.dir, ref)
	want := map[string]any{"ref": ref, "kind": "manifest", "repository": "team/app", "digest": string(tr.cur.Digest()),
		"tags": []any{"latest", "v1"}}
	assert.Equal(t, map[string]any{"dryRun": true, "deleted": []any{want}}, got)
	assert.Equal(t, before, snapshot(t, tr.dir), "rm --dry-run changed the tree")

	out := runOK(t, "rm", tr.dir, ref)
	assert.Contains(t, out, "deleted manifest "+ref+" and its tags latest, v1\n")
	_, err := tr.repoApp.Manifest(tr.cur.Digest())
	assert.True(t, errors.Is(err, fs.ErrNotExist), "Manifest(cur) after rm = %v, want not exist", err)
	assert.Equal(t, []string{"docker", "multi"}, tagNames(t, tr.repoApp))
	_, err = tr.root.Blob(tr.cur.Digest())
	assert.NoError(t, err, "blob data stays until gc")

	_, errOut, code := runCLI(t, "rm", tr.dir, ref)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "does not exist")
}

func TestRmRepositoryNested(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	got := runJSON(t, 0, "rm", "--dry-run", "--json", tr.dir, "team/app")
	assert.Equal(t, map[string]any{"dryRun": true, "deleted": []any{map[string]any{
		"ref": "team/app", "kind": "repository", "repository": "team/app",
		"tags": []any{"docker", "latest", "multi", "v1"}, "manifests": float64(6), "nested": []any{"team/app/web"}}}}, got)
	assert.Equal(t, before, snapshot(t, tr.dir), "rm --dry-run changed the tree")

	out := runOK(t, "rm", tr.dir, "team/app")
	assert.Contains(t, out, "deleted repository team/app: 4 tags, 6 manifests\n  kept: nested repositories team/app/web\n")
	var inspected map[string]any
	inspected = runJSON(t, 0, "inspect", "--json", tr.dir)
	assert.Equal(t, []string{"team/app/web"}, keys(inspected["repositories"].(map[string]any)))
	// The nested repository still resolves.
	tag, err := tr.repoWeb.Tag("1.0")
	require.NoError(t, err)
	m, err := tag.Resolve()
	require.NoError(t, err)
	assert.Equal(t, tr.web.Digest(), m.Digest())
	for _, l := range m.Layers() {
		_, err := tr.repoWeb.Blob(l.Digest)
		assert.NoError(t, err, "layer %s of team/app/web", l.Digest)
	}
	runJSON(t, 0, "check", "--json", "--ignore", "blob-orphan", tr.dir)

	_, errOut, code := runCLI(t, "rm", tr.dir, "team/app")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "team/app")
}

func TestRmErrors(t *testing.T) {
	tr := buildTree(t)
	before := snapshot(t, tr.dir)
	for _, c := range []struct {
		args   []string
		stderr string
		stdout string
	}{
		{[]string{"rm", tr.dir}, "want ROOT and at least one REPO[:TAG|@DIGEST], got 1 arguments", ""},
		{[]string{"rm", tr.dir, "Team/App"}, "invalid repository name", ""},
		{[]string{"rm", tr.dir, "team/app:bad tag"}, "invalid tag", ""},
		{[]string{"rm", tr.dir, "team/app@sha256:123"}, "invalid digest", ""},
		{[]string{"rm", tr.dir, "team/nothing"}, "repository team/nothing", ""},
		{[]string{"rm", tr.dir, "team/app:nothing"}, "team/app:nothing", ""},
		// The first reference is deleted (and reported), the second fails.
		{[]string{"rm", "--dry-run", tr.dir, "team/app:v1", "team/app:nothing"}, "team/app:nothing", "would delete tag team/app:v1"},
	} {
		out, errOut, code := runCLI(t, c.args...)
		assert.Equal(t, 2, code, "regstore %q", c.args)
		assert.Contains(t, errOut, c.stderr, "stderr of %q", c.args)
		if c.stdout == "" {
			assert.Empty(t, out, "stdout of %q", c.args)
		} else {
			assert.Contains(t, out, c.stdout, "stdout of %q", c.args)
		}
	}
	assert.Equal(t, before, snapshot(t, tr.dir))
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/usage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDuJSON(t *testing.T) {
	tr := buildTree(t)
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app", "5b3a1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", time.Now()))
	want, err := usage.Measure(context.Background(), tr.root)
	require.NoError(t, err)

	got := runJSON(t, 0, "du", "--json", tr.dir)
	assert.Equal(t, []string{"blobs", "linkedOnlyBytes", "orphanedBytes", "repositories", "taggedBytes", "totalBytes",
		"untaggedBytes", "uploadBytes"}, keys(got))
	assert.EqualValues(t, want.TotalBytes, got["totalBytes"])
	assert.EqualValues(t, want.Blobs, got["blobs"])
	assert.EqualValues(t, tr.loose.Size(), got["orphanedBytes"], "the loose blob is referenced by no manifest")
	assert.EqualValues(t, tr.loose.Size(), got["linkedOnlyBytes"], "but a _layers link names it")
	assert.Positive(t, got["untaggedBytes"], "the old image")
	assert.Positive(t, got["uploadBytes"])
	assert.EqualValues(t, want.TotalBytes, got["taggedBytes"].(float64)+got["untaggedBytes"].(float64)+got["orphanedBytes"].(float64))

	repos := got["repositories"].([]any)
	require.Len(t, repos, 2)
	app, web := repos[0].(map[string]any), repos[1].(map[string]any)
	assert.Equal(t, "team/app", app["name"])
	assert.Equal(t, "team/app/web", web["name"])
	assert.Equal(t, []string{"freedBytes", "name", "referencedBytes", "sharedBytes", "tags", "uniqueBytes", "uploadBytes"}, keys(app))
	// The base layer is all they share.
	base, err := tr.root.Blob(tr.web.Layers()[0].Digest)
	require.NoError(t, err)
	assert.EqualValues(t, base.Size(), app["sharedBytes"])
	assert.EqualValues(t, base.Size(), web["sharedBytes"])
	assert.EqualValues(t, app["uniqueBytes"], app["freedBytes"])
	for _, r := range []map[string]any{app, web} {
		assert.EqualValues(t, r["referencedBytes"], r["uniqueBytes"].(float64)+r["sharedBytes"].(float64), "%s", r["name"])
	}

	var tags []string
	for _, tg := range app["tags"].([]any) {
		tg := tg.(map[string]any)
		tags = append(tags, tg["name"].(string))
		assert.Equal(t, []string{"digest", "freedBytes", "name", "referencedBytes", "sharedBytes", "uniqueBytes"}, keys(tg))
		if tg["name"] == "v1" {
			assert.Equal(t, string(tr.cur.Digest()), tg["digest"])
			assert.EqualValues(t, 0, tg["uniqueBytes"], "v1 and latest share everything")
		}
	}
	assert.Equal(t, []string{"docker", "latest", "multi", "v1"}, tags)

	// The JSON is exactly the library's accounting.
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	var wantMap map[string]any
	require.NoError(t, json.Unmarshal(wantJSON, &wantMap))
	assert.Equal(t, wantMap, got)

	// Named repositories only; the store totals stay whole.
	only := runJSON(t, 0, "du", tr.dir, "team/app/web", "--json")
	require.Len(t, only["repositories"], 1)
	assert.Equal(t, web, only["repositories"].([]any)[0])
	assert.Equal(t, got["totalBytes"], only["totalBytes"])
}

func TestDuHuman(t *testing.T) {
	tr := buildTree(t)
	out := runOK(t, "du", tr.dir)
	for _, want := range []string{
		"REFERENCED", "FREED BY DELETE", "REPOSITORY / TAG",
		"  team/app\n", "  team/app/web\n",
		":v1 -> " + string(tr.cur.Digest()),
		":1.0 -> " + string(tr.web.Digest()),
		"\nstore: ",
		"  orphaned:  " + humanBytes(tr.loose.Size()),
	} {
		assert.Contains(t, out, want)
	}

	_, errOut, code := runCLI(t, "du", tr.dir, "team/nothing")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "team/nothing")
	_, errOut, code = runCLI(t, "du", tr.dir, "Bad Name")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "invalid repository name")
	_, _, code = runCLI(t, "du")
	assert.Equal(t, 2, code)
}

func TestPurgeUploads(t *testing.T) {
	tr := buildTree(t)
	const old, fresh, unknown = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b", "2c3d4e5f-6071-4829-8b3c-4d5e6f7a8b9c", "3d4e5f60-7182-493a-9c4d-5e6f7a8b9cad"
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app", old, time.Now().Add(-200*time.Hour)))
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app/web", fresh, time.Now().Add(-time.Hour)))
	uploadDir := func(repo, id string) string {
		return filepath.Join(tr.dir, filepath.FromSlash(tr.root.Layout().Upload(repo, id)))
	}
	// No startedat: judged by its directory's age, made old here.
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app", unknown, time.Time{}))
	require.NoError(t, os.Chtimes(uploadDir("team/app", unknown), time.Now(), time.Now().Add(-300*time.Hour)))
	before := snapshot(t, tr.dir)

	got := runJSON(t, 0, "purge-uploads", "--older-than", "168h", "--dry-run", "--json", tr.dir)
	assert.Equal(t, []string{"bytes", "count", "dryRun", "olderThan", "uploads"}, keys(got))
	assert.Equal(t, true, got["dryRun"])
	assert.Equal(t, "168h0m0s", got["olderThan"])
	assert.EqualValues(t, 2, got["count"])
	ups := got["uploads"].([]any)
	require.Len(t, ups, 2)
	up, noStart := ups[0].(map[string]any), ups[1].(map[string]any)
	assert.Equal(t, unknown, noStart["id"])
	assert.NotContains(t, noStart, "startedAt")
	assert.Equal(t, []string{"id", "modTime", "path", "repository", "size", "startedAt"}, keys(up))
	assert.Equal(t, old, up["id"])
	assert.Equal(t, "team/app", up["repository"])
	assert.Equal(t, tr.root.Layout().Upload("team/app", old), up["path"])
	assert.Equal(t, up["size"].(float64)+noStart["size"].(float64), got["bytes"])
	assert.Positive(t, up["size"])
	assert.Equal(t, before, snapshot(t, tr.dir), "purge-uploads --dry-run changed the tree")

	human := runOK(t, "purge-uploads", tr.dir, "--older-than=1m", "--dry-run")
	assert.Contains(t, human, "team/app/_uploads/"+unknown+"  ")
	assert.Contains(t, human, "(no startedat, directory modified ")
	assert.Contains(t, human, "would remove 3 upload sessions older than 1m0s")
	assert.Equal(t, before, snapshot(t, tr.dir))

	out := runOK(t, "purge-uploads", "--older-than", "168h", tr.dir)
	assert.Contains(t, out, "removed 2 upload sessions older than 168h0m0s")
	assert.NoDirExists(t, uploadDir("team/app", old))
	assert.NoDirExists(t, uploadDir("team/app", unknown))
	assert.DirExists(t, uploadDir("team/app/web", fresh))
	got = runJSON(t, 0, "purge-uploads", "--older-than", "168h", "--json", tr.dir)
	assert.Equal(t, []any{}, got["uploads"])

	for _, args := range [][]string{{"purge-uploads", tr.dir}, {"purge-uploads", "--older-than", "-1h", tr.dir}} {
		out, errOut, code := runCLI(t, args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "--older-than must be given, and positive")
	}
}

package s3_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acceptAll is the Accept header of a client that takes every manifest type.
var acceptAll = strings.Join([]string{
	regstore.MediaTypeOCIManifest, regstore.MediaTypeOCIIndex,
	regstore.MediaTypeDockerManifest, regstore.MediaTypeDockerManifestList,
}, ", ")

func httpGet(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", acceptAll)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, b)
	return resp, b
}

func lines(s string) []string {
	out := strings.Fields(s)
	slices.Sort(out)
	return out
}

// TestRegistryServesRegstoreTree: regstore writes a tree into the bucket;
// the v3.1.2 registry, with its s3 driver on the same bucket and
// rootdirectory, serves it: catalog, tag lists, every tag by tag and by
// digest with the right Docker-Content-Digest, every blob, and crane pulls
// and validates every tag.
func TestRegistryServesRegstoreTree(t *testing.T) {
	peer(t, "registry", registryHint)
	peer(t, "crane", craneHint)
	root := uniqueRoot("regstore-wrote")
	f := newFS(t, root)
	s, err := regstore.Open(f)
	require.NoError(t, err)
	app, err := s.Repository("library/app")
	require.NoError(t, err)
	web, err := s.Repository("team/web-b")
	require.NoError(t, err)
	m1 := pushImage(t, app, 11, "v1")
	m2 := pushImage(t, app, 12, "v2", "v2-rc")
	idx := pushIndex(t, app, m1, m2, "multi")
	m3 := pushImage(t, web, 13, "latest", "1.0-rc", "1.0")
	want := map[string]map[string]*regstore.Manifest{
		"library/app": {"v1": m1, "v2": m2, "v2-rc": m2, "multi": idx},
		"team/web-b":  {"latest": m3, "1.0-rc": m3, "1.0": m3},
	}

	host := startRegistry(t, root)
	assert.Equal(t, []string{"library/app", "team/web-b"}, lines(crane(t, "catalog", host)), "crane catalog")
	for repo, tags := range want {
		assert.ElementsMatch(t, slices.Collect(mapsKeys(tags)), lines(crane(t, "ls", host+"/"+repo)), "crane ls %s", repo)
		for tag, m := range tags {
			ref := host + "/" + repo + ":" + tag
			assert.Equal(t, m.Digest().String(), strings.TrimSpace(crane(t, "digest", ref)), "crane digest %s", ref)
			assert.Equal(t, string(m.Bytes()), crane(t, "manifest", ref), "crane manifest %s", ref)
			for _, byRef := range []string{tag, m.Digest().String()} {
				resp, body := httpGet(t, "http://"+host+"/v2/"+repo+"/manifests/"+byRef)
				assert.Equal(t, m.Digest().String(), resp.Header.Get("Docker-Content-Digest"), "GET %s/manifests/%s", repo, byRef)
				assert.Equal(t, m.MediaType(), resp.Header.Get("Content-Type"), "GET %s/manifests/%s", repo, byRef)
				assert.Equal(t, m.Bytes(), body, "GET %s/manifests/%s", repo, byRef)
			}
			for d := range m.Blobs() {
				resp, body := httpGet(t, "http://"+host+"/v2/"+repo+"/blobs/"+d.Digest.String())
				assert.Equal(t, d.Digest, digest.FromBytes(body), "GET %s/blobs/%s", repo, d.Digest)
				_ = resp
			}
			dir := t.TempDir()
			crane(t, "pull", "--format", "oci", ref, dir)
			if !m.IsIndex() {
				crane(t, "validate", "--remote", ref)
			}
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// layerTar writes a small tar holding files and returns its path.
func layerTar(t testing.TB, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(mapsKeys(files)) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(files[name]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "layer.tar")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// TestRegstoreReadsRegistryTree: crane pushes images, an index and tags
// through the v3.1.2 registry into the bucket; regstore, on the same bucket
// and root directory, reads identically what the registry answers:
// repositories, tags, tag → digest, manifest bytes and blob contents; and
// the integrity check finds nothing wrong.
func TestRegstoreReadsRegistryTree(t *testing.T) {
	peer(t, "registry", registryHint)
	peer(t, "crane", craneHint)
	root := uniqueRoot("registry-wrote")
	host := startRegistry(t, root)
	crane(t, "append", "-f", layerTar(t, map[string]string{"a.txt": "one"}), "-t", host+"/pushed/one:v1")
	crane(t, "append", "-f", layerTar(t, map[string]string{"b.txt": "two"}), "-t", host+"/pushed/one:v2", "--oci-empty-base")
	crane(t, "append", "-f", layerTar(t, map[string]string{"c.txt": "three"}), "-t", host+"/pushed/one:v1-rc", "--oci-empty-base")
	crane(t, "append", "-f", layerTar(t, map[string]string{"d.txt": "four"}), "-t", host+"/pushed/one/nested:latest", "--oci-empty-base")
	crane(t, "append", "-f", layerTar(t, map[string]string{"e.txt": "five"}), "-t", host+"/pushed/one-b:latest", "--oci-empty-base")
	crane(t, "index", "append", "-m", host+"/pushed/one:v2", "-m", host+"/pushed/one:v1-rc", "-t", host+"/pushed/one:idx")
	crane(t, "tag", host+"/pushed/one:v1", "alias")

	f := newFS(t, root)
	s, err := regstore.Open(f)
	require.NoError(t, err)
	var repos []string
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		repos = append(repos, r.Name())
	}
	assert.ElementsMatch(t, lines(crane(t, "catalog", host)), repos, "repositories")
	checked := 0
	for _, repo := range repos {
		r, err := s.Repository(repo)
		require.NoError(t, err)
		var tags []string
		for tg, err := range r.Tags() {
			require.NoError(t, err)
			tags = append(tags, tg.Name())
		}
		assert.Equal(t, lines(crane(t, "ls", host+"/"+repo)), tags, "tags of %s", repo)
		for _, tag := range tags {
			ref := host + "/" + repo + ":" + tag
			tg, err := r.Tag(tag)
			require.NoError(t, err)
			d, err := tg.Digest()
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(crane(t, "digest", ref)), d.String(), "digest of %s", ref)
			m, err := tg.Resolve()
			require.NoError(t, err)
			assert.Equal(t, crane(t, "manifest", ref), string(m.Bytes()), "manifest of %s", ref)
			for desc := range m.Blobs() {
				b, err := r.Blob(desc.Digest)
				require.NoError(t, err, "blob %s of %s", desc.Digest, ref)
				rc, err := b.Open()
				require.NoError(t, err)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				require.NoError(t, rc.Close())
				assert.Equal(t, crane(t, "blob", host+"/"+repo+"@"+desc.Digest.String()), string(got), "blob %s of %s", desc.Digest, ref)
				assert.Equal(t, desc.Size, b.Size())
			}
			checked++
		}
	}
	assert.Equal(t, 7, checked, "tags checked")
	for p, err := range check.Problems(context.Background(), s, check.Options{}) {
		require.NoError(t, err)
		assert.Fail(t, "Check found a problem", "%s", p)
	}
}

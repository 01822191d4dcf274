package interop

// The server package's handler against real clients (crane, skopeo) and
// against the registry itself, both ways: a tree written through the
// handler is served by the registry v3 identically, and a tree the
// registry wrote is served by the handler identically.

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveStore serves the store at root (a registry rootdirectory) through
// the handler on a loopback port and returns its host:port.
func serveStore(t testing.TB, root string, opts server.Options) string {
	t.Helper()
	srv := httptest.NewServer(server.New(openStore(t, root), opts))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// servedRef is a manifest reference served under test.
type servedRef struct{ repo, ref string }

// pushWithCrane pushes, to host: an OCI image, a Docker image, a
// multi-platform OCI index of two images, and a second tag, and returns
// every tag pushed.
func pushWithCrane(t *testing.T, host string) []servedRef {
	dir := t.TempDir()
	l1 := makeLayerTar(t, dir, "l1.tar", map[string]string{"etc/hello": "hello from layer 1"})
	l2 := makeLayerTar(t, dir, "l2.tar", map[string]string{"usr/share/x": strings.Repeat("layer two ", 5000)})
	craneAppend(t, host+"/app:oci", true, l1, l2)
	craneAppend(t, host+"/app:docker", false, l1)
	amd := craneAppend(t, host+"/multi/images:amd64", true, l2)
	arm := craneSetPlatform(t, host+"/multi/images:amd64", "linux/arm64", host+"/multi/images:arm64")
	amdP := craneSetPlatform(t, host+"/multi/images:amd64", "linux/amd64", host+"/multi/images:amd64")
	_ = amd
	craneIndexAppend(t, host+"/multi/index:latest", false, host+"/multi/images@"+amdP, host+"/multi/images@"+arm)
	craneTag(t, host+"/app:oci", "again")
	return []servedRef{{"app", "oci"}, {"app", "docker"}, {"app", "again"}, {"multi/images", "amd64"},
		{"multi/images", "arm64"}, {"multi/index", "latest"}}
}

// sameServing checks that hosts a and b answer every ref, its children and
// its blobs, with the same bytes, digests and content types.
func sameServing(t *testing.T, a, b string, refs []servedRef) {
	t.Helper()
	seen := map[string]bool{}
	var check func(repo, ref string)
	check = func(repo, ref string) {
		if seen[repo+"@"+ref] {
			return
		}
		seen[repo+"@"+ref] = true
		ma, mb := getManifest(t, a, repo, ref), getManifest(t, b, repo, ref)
		require.Equal(t, http.StatusOK, ma.Status, "%s %s:%s: %s", a, repo, ref, ma.Body)
		require.Equal(t, http.StatusOK, mb.Status, "%s %s:%s: %s", b, repo, ref, mb.Body)
		assert.Equal(t, string(ma.Body), string(mb.Body), "%s:%s body", repo, ref)
		assert.Equal(t, ma.Digest, mb.Digest, "%s:%s digest", repo, ref)
		assert.Equal(t, ma.ContentType, mb.ContentType, "%s:%s content type", repo, ref)
		assert.Equal(t, digest.FromBytes(ma.Body).String(), ma.Digest)
		ha, hb := headManifest(t, a, repo, ref), headManifest(t, b, repo, ref)
		assert.Equal(t, ha, hb, "%s:%s HEAD", repo, ref)
		_, blobs, children := manifestRefs(t, ma.Body)
		for _, d := range blobs {
			ba, bb := getBlob(t, a, repo, d), getBlob(t, b, repo, d)
			require.Equal(t, http.StatusOK, ba.Status, "%s blob %s", repo, d)
			require.Equal(t, http.StatusOK, bb.Status, "%s blob %s", repo, d)
			assert.Equal(t, ba.Body, bb.Body)
			assert.Equal(t, d, digest.FromBytes(ba.Body).String())
			for _, h := range []string{"Docker-Content-Digest", "Content-Length", "Etag", "Content-Type"} {
				assert.Equal(t, ba.Header.Get(h), bb.Header.Get(h), "blob %s header %s", d, h)
			}
		}
		for _, c := range children {
			check(repo, c)
		}
	}
	for _, r := range refs {
		check(r.repo, r.ref)
	}
	// Listings too.
	assert.Equal(t, catalog(t, a, 0), catalog(t, b, 0), "catalog")
	assert.Equal(t, catalog(t, a, 2), catalog(t, b, 2), "catalog in pages of 2")
	repos := map[string]bool{}
	for _, r := range refs {
		repos[r.repo] = true
	}
	for repo := range repos {
		ta, sa := listTags(t, a, repo)
		tb, sb := listTags(t, b, repo)
		assert.Equal(t, sa, sb)
		assert.Equal(t, ta, tb, "tags of %s", repo)
	}
}

// TestServeCraneSkopeo pushes and pulls with crane and skopeo through the
// handler, then has the registry v3 serve the tree it wrote.
func TestServeCraneSkopeo(t *testing.T) {
	requireBinary(t, "crane")
	requireBinary(t, "skopeo")
	root := t.TempDir()
	host := serveStore(t, root, server.Options{}.AllDeletes())
	refs := pushWithCrane(t, host)

	for _, r := range refs {
		craneValidate(t, host+"/"+r.repo+":"+r.ref)
	}
	assert.Equal(t, []string{"again", "docker", "oci"}, strings.Fields(mustTool(t, "crane", "ls", "--insecure", host+"/app")))
	assert.Equal(t, []string{"app", "multi/images", "multi/index"}, strings.Fields(mustTool(t, "crane", "catalog", "--insecure", host)))
	layout := filepath.Join(t.TempDir(), "oci")
	cranePullOCI(t, host+"/app:oci", layout)
	assert.Equal(t, craneDigest(t, host+"/app:oci"), craneDigest(t, host+"/app@"+craneDigest(t, host+"/app:oci")))

	// skopeo both ways: pull into an OCI layout and a dir:, push back
	// under other names, all digests kept.
	ociDir := filepath.Join(t.TempDir(), "layout")
	skopeoCopy(t, "docker://"+host+"/app:oci", "oci:"+ociDir+":v1", "--preserve-digests")
	skopeoCopy(t, "oci:"+ociDir+":v1", "docker://"+host+"/copied/oci:v1", "--dest-tls-verify=false", "--preserve-digests")
	assert.Equal(t, craneDigest(t, host+"/app:oci"), craneDigest(t, host+"/copied/oci:v1"))
	dirDir := filepath.Join(t.TempDir(), "dir")
	skopeoCopy(t, "docker://"+host+"/app:docker", "dir:"+dirDir, "--preserve-digests")
	skopeoCopy(t, "dir:"+dirDir, "docker://"+host+"/copied/docker:v1", "--dest-tls-verify=false", "--preserve-digests")
	assert.Equal(t, craneDigest(t, host+"/app:docker"), craneDigest(t, host+"/copied/docker:v1"))
	// (Not an index with platforms: skopeo 1.9 refuses to copy one with
	// --preserve-digests, from the registry as from the handler.)
	craneValidate(t, host+"/copied/docker:v1")
	refs = append(refs, servedRef{"copied/oci", "v1"}, servedRef{"copied/docker", "v1"})

	// A delete through the handler, as the registry's.
	assert.Equal(t, http.StatusAccepted, deleteTag(t, host, "app", "again"))
	refs = slices.DeleteFunc(refs, func(r servedRef) bool { return r.ref == "again" })

	// The registry serves what the handler wrote, identically.
	reg := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
	sameServing(t, host, reg.Host, refs)
	for _, r := range refs {
		craneValidate(t, reg.Host+"/"+r.repo+":"+r.ref)
	}
	// And regstore's own check finds nothing wrong with the tree.
	for p, err := range check.Problems(t.Context(), openStore(t, root), check.Options{}) {
		require.NoError(t, err)
		t.Errorf("check: %s", p)
	}
}

// TestServeRegistryTree has the handler serve a tree the registry v3
// wrote, and compares every answer with the registry's.
func TestServeRegistryTree(t *testing.T) {
	requireBinary(t, "crane")
	root := t.TempDir()
	reg := startRegistry(t, V3, root, RegistryOptions{})
	refs := pushWithCrane(t, reg.Host)
	// A referrer pushed to the registry (stored, though it has no
	// referrers API): the handler finds it from the subject field.
	subject := getManifest(t, reg.Host, "app", "oci")
	require.Equal(t, http.StatusOK, subject.Status)
	artifact := pushArtifact(t, reg.Host, "app", subject)

	host := serveStore(t, root, server.Options{ReadOnly: true})
	sameServing(t, reg.Host, host, refs)
	for _, r := range refs {
		craneValidate(t, host+"/"+r.repo+":"+r.ref)
	}
	res := httpDo(t, http.MethodGet, "http://"+host+"/v2/app/referrers/"+subject.Digest, nil, nil)
	require.Equal(t, http.StatusOK, res.Status)
	var idx struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &idx))
	require.Len(t, idx.Manifests, 1)
	assert.Equal(t, artifact, idx.Manifests[0].Digest)
	assert.Equal(t, "application/vnd.example.note", idx.Manifests[0].ArtifactType)
}

// pushArtifact pushes an OCI artifact whose subject is subject, by digest,
// over the plain API, and returns its digest.
func pushArtifact(t *testing.T, host, repo string, subject ManifestResult) string {
	t.Helper()
	empty := []byte("{}")
	ed := digest.FromBytes(empty)
	up := startUpload(t, host, repo)
	res := httpDo(t, http.MethodPut, up.Location+"&digest="+ed.String(), nil, empty)
	if res.Status == http.StatusBadRequest { // a Location without a query
		res = httpDo(t, http.MethodPut, up.Location+"?digest="+ed.String(), nil, empty)
	}
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"artifactType":  "application/vnd.example.note",
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2}},
		"subject":       map[string]any{"mediaType": subject.ContentType, "digest": subject.Digest, "size": len(subject.Body)},
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	d := digest.FromBytes(raw)
	res = httpDo(t, http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+d.String(),
		http.Header{"Content-Type": {MediaTypeOCIManifest}}, raw)
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	return d.String()
}

// apiAnswer is what a server answered to one request, reduced to what
// clients look at: status, error code, Allow.
type apiAnswer struct {
	Status int
	Code   string
	Allow  string
}

func answer(t *testing.T, method, url string, header http.Header, body []byte) apiAnswer {
	t.Helper()
	res := httpDo(t, method, url, header, body)
	a := apiAnswer{Status: res.Status, Allow: res.Header.Get("Allow")}
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(res.Body, &env) == nil && len(env.Errors) > 0 {
		a.Code = env.Errors[0].Code
	}
	return a
}

// TestServeErrorsLikeRegistry sends the same failing requests to the
// registry v3 and to the handler over the same tree, writable (deletes
// on) and read-only, and requires the same statuses and error codes.
func TestServeErrorsLikeRegistry(t *testing.T) {
	requireBinary(t, "crane")
	root := t.TempDir()
	reg := startRegistry(t, V3, root, RegistryOptions{})
	dir := t.TempDir()
	l1 := makeLayerTar(t, dir, "l1.tar", map[string]string{"a": "b"})
	craneAppend(t, reg.Host+"/app:v1", true, l1)
	m := getManifest(t, reg.Host, "app", "v1")
	require.Equal(t, http.StatusOK, m.Status)
	craneAppend(t, reg.Host+"/bydigest:tmp", true, l1)
	require.Equal(t, http.StatusAccepted, deleteTag(t, reg.Host, "bydigest", "tmp")) // leaves an empty tags directory
	mustTool(t, "crane", "copy", "--insecure", reg.Host+"/app:v1", reg.Host+"/bydigest2@"+m.Digest)
	missing := digest.FromString("missing").String()
	_, blobs, _ := manifestRefs(t, m.Body)
	orphanLayer := strings.Replace(string(m.Body), blobs[len(blobs)-1], missing, 1)
	oci := http.Header{"Content-Type": {MediaTypeOCIManifest}, "Accept": {manifestAccept}}
	requests := []struct {
		name, method, path string
		header             http.Header
		body               []byte
	}{
		{"unknown tag", "GET", "/v2/app/manifests/nope", oci, nil},
		{"unknown digest", "GET", "/v2/app/manifests/" + missing, oci, nil},
		{"bad digest", "GET", "/v2/app/manifests/sha256:abc", oci, nil},
		{"OCI manifest without Accept", "GET", "/v2/app/manifests/v1", nil, nil},
		{"unknown repository manifest", "GET", "/v2/nope/manifests/v1", oci, nil},
		{"unknown blob", "GET", "/v2/app/blobs/" + missing, nil, nil},
		{"unknown blob HEAD", "HEAD", "/v2/app/blobs/" + missing, nil, nil},
		{"bad blob digest", "GET", "/v2/app/blobs/sha256:abc", nil, nil},
		{"unknown repository tags", "GET", "/v2/nope/tags/list", nil, nil},
		{"tags of a repository whose tags were deleted", "GET", "/v2/bydigest/tags/list", nil, nil},
		{"tags of a repository pushed by digest only", "GET", "/v2/bydigest2/tags/list", nil, nil},
		{"negative n", "GET", "/v2/app/tags/list?n=-1", nil, nil},
		{"catalog n too large", "GET", "/v2/_catalog?n=5000", nil, nil},
		{"manifest with an unknown layer", "PUT", "/v2/app/manifests/v2", oci, []byte(orphanLayer)},
		{"manifest not JSON", "PUT", "/v2/app/manifests/v2", oci, []byte("{")},
		{"manifest digest mismatch", "PUT", "/v2/app/manifests/" + missing, oci, m.Body},
		{"manifest too large", "PUT", "/v2/app/manifests/v2", oci, []byte(strings.Repeat(" ", 4<<20+1))},
		{"delete unknown manifest", "DELETE", "/v2/app/manifests/" + missing, nil, nil},
		{"delete unknown tag", "DELETE", "/v2/app/manifests/nope", nil, nil},
		{"delete unknown blob", "DELETE", "/v2/app/blobs/" + missing, nil, nil},
		{"upload status unknown", "GET", "/v2/app/blobs/uploads/8a4b6d0e-4c55-4d4c-9b1e-1d1e2f3a4b5c", nil, nil},
	}
	// Deliberate differences: the handler completes a monolithic POST
	// (?digest=) at once, so it refuses a malformed digest, where the
	// registry ignores the parameter and opens a session; and it checks
	// the method before the upload (the registry answers a write to an
	// upload URL without its _state token in read-only mode with 404
	// BLOB_UPLOAD_INVALID, with one with 405).
	// (The registry knows no repository without a tags directory.)
	assert.Equal(t, apiAnswer{Status: 404, Code: "NAME_UNKNOWN"}, answer(t, "GET", "http://"+reg.Host+"/v2/bydigest2/tags/list", nil, nil))
	assert.Equal(t, http.StatusOK, answer(t, "GET", "http://"+reg.Host+"/v2/bydigest/tags/list", nil, nil).Status)
	host := serveStore(t, root, server.Options{}.AllDeletes())
	for _, rq := range requests {
		want := answer(t, rq.method, "http://"+reg.Host+rq.path, rq.header, rq.body)
		got := answer(t, rq.method, "http://"+host+rq.path, rq.header, rq.body)
		assert.Equal(t, want, got, "%s: %s %s", rq.name, rq.method, rq.path)
	}

	// Read-only: both refuse writes the same way.
	reg.Stop()
	ro := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
	roHost := serveStore(t, root, server.Options{ReadOnly: true})
	for _, rq := range [][2]string{
		{"POST", "/v2/app/blobs/uploads/"},
		{"PUT", "/v2/app/manifests/v3"},
		{"DELETE", "/v2/app/manifests/v1"},
		{"DELETE", "/v2/app/blobs/" + blobs[0]},
		{"GET", "/v2/app/tags/list"},
	} {
		want := answer(t, rq[0], "http://"+ro.Host+rq[1], oci, m.Body)
		got := answer(t, rq[0], "http://"+roHost+rq[1], oci, m.Body)
		assert.Equal(t, want, got, "read-only %s %s", rq[0], rq[1])
	}
}

// TestServeCLI runs `regstore serve` as a process: crane pushes, lists and
// validates through it, and SIGTERM stops it cleanly, its access log on
// standard error.
func TestServeCLI(t *testing.T) {
	requireBinary(t, "crane")
	bin := buildRegstoreCLI(t)
	root := filepath.Join(t.TempDir(), "root")
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	var stderr lockedBuffer
	cmd := exec.Command(bin, "serve", "--addr", host, root)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "regstore serve did not start: %s", stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	layer := makeLayerTar(t, t.TempDir(), "l.tar", map[string]string{"f": "via the CLI"})
	d := craneAppend(t, host+"/cli/app:v1", true, layer)
	craneValidate(t, host+"/cli/app:v1")
	assert.Equal(t, "v1", strings.TrimSpace(mustTool(t, "crane", "ls", "--insecure", host+"/cli/app")))
	assert.Equal(t, "cli/app", strings.TrimSpace(mustTool(t, "crane", "catalog", "--insecure", host)))

	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		require.NoError(t, err, "exit status after SIGTERM; stderr:\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("regstore serve did not stop on SIGTERM")
	}
	log := stderr.String()
	assert.Contains(t, log, `PUT "/v2/cli/app/manifests/v1" 201`)
	assert.Contains(t, log, "shutting down")
	// What it wrote is there for every other tool.
	s := openStore(t, root)
	repo := storeRepo(t, s, "cli/app")
	tag, err := repo.Tag("v1")
	require.NoError(t, err)
	got, err := tag.Digest()
	require.NoError(t, err)
	assert.Equal(t, d, got.String())
}

package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Expect is what the registry API reported about a tree; it is saved next
// to each testdata archive as <name>.expect.json.
type Expect struct {
	// Catalog is /v2/_catalog in the registry's own order (2.8 returns
	// directory order, i.e. unsorted; v3 sorts per directory level).
	Catalog []string `json:"catalog"`
	// Tags maps repo -> tag -> digest (HEAD by tag, Docker-Content-Digest).
	Tags map[string]map[string]string `json:"tags"`
	// Manifests maps repo -> every digest pullable by digest (sorted).
	Manifests map[string][]string `json:"manifests"`
	// Blobs maps repo -> config and layer digests pullable through
	// /v2/<repo>/blobs/<d> (sorted). Includes the blobs of deleted manifests.
	Blobs map[string][]string `json:"blobs"`

	// MediaTypes maps manifest digest -> Content-Type the registry served.
	MediaTypes map[string]string `json:"media_types,omitempty"`
	// DeletedManifests maps repo -> digests deleted through the API (404 by digest).
	DeletedManifests map[string][]string `json:"deleted_manifests,omitempty"`
	// DeletedTags maps repo -> tags deleted through the API (v3 only).
	DeletedTags map[string][]string `json:"deleted_tags,omitempty"`
	// Uploads maps repo -> UUIDs of abandoned (never completed) uploads.
	Uploads map[string][]string `json:"uploads,omitempty"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// scenario is one run of populateRegistry: the names of what was pushed and
// what the API reported.
type scenario struct {
	Version string
	Expect  Expect
	// D holds named manifest digests: alpine, app-v1, web, app-old, app-v2,
	// tmp (deleted), src-<arch>[-docker] (index children), index, list.
	D map[string]string
	// Bodies holds every manifest body pushed, by digest.
	Bodies map[string][]byte
	// TagDeleteStatus is the status of DELETE /v2/library/alpine/manifests/edge.
	TagDeleteStatus int
	// Upload is the abandoned upload (repo team/app/web, data UploadData).
	Upload     Upload
	UploadRepo string
	UploadData []byte
}

// Repository names used by the scenario.
const (
	repoAlpine = "library/alpine"
	repoApp    = "team/app"
	repoWeb    = "team/app/web"
	repoSrc    = "multi/src"
	repoArch   = "multi/arch"
)

// populateRegistry pushes the standard interop set into a running, empty
// registry with crane and raw HTTP, then records what the API reports:
//
//   - library/alpine:latest  Docker schema2 image (crane append default); :edge tags it too
//   - team/app:v1            OCI image (--oci-empty-base), retagged as :stable (crane tag)
//   - team/app/web:1.0       OCI image sharing team/app's layer tarball (nested repository)
//   - team/app:latest        pushed twice: moved from app-old (now untagged) to app-v2
//   - multi/src:{amd64,arm64}[-docker]  per-arch images, each pushed and then
//     re-pushed with a platform (the tag moves; the platform-less ones become untagged)
//   - multi/arch:latest      OCI index of the two OCI children (copied into multi/arch, untagged)
//   - multi/arch:list        Docker manifest list of the two Docker children
//   - DELETE tag library/alpine:edge (v3: 202; 2.8: 400, the tag stays)
//   - team/app:tmp pushed, then DELETE by digest (leaves an empty revision dir)
//   - an abandoned upload in team/app/web: POST + one PATCH, never completed
func populateRegistry(t *testing.T, reg *Registry) *scenario {
	t.Helper()
	host := reg.Host
	ref := reg.Ref
	s := &scenario{Version: reg.Version, D: map[string]string{}, Bodies: map[string][]byte{}}
	known := map[string]map[string]bool{} // repo -> manifest digests pushed there
	add := func(repo, d string) {
		if known[repo] == nil {
			known[repo] = map[string]bool{}
		}
		known[repo][d] = true
	}

	dir := t.TempDir()
	layer := func(name string, files map[string]string) string {
		return makeLayerTar(t, dir, name+".tar", files)
	}
	base := layer("base", map[string]string{"etc/os-release": "NAME=tiny\n"})
	app := layer("app", map[string]string{"app/bin": "app v1\n"})
	app2 := layer("app2", map[string]string{"app/bin": "app v2\n"})
	web := layer("web", map[string]string{"web/index.html": "<h1>hi</h1>\n"})
	tmp := layer("tmp", map[string]string{"tmp/x": "doomed\n"})
	archLayers := map[string]string{
		"amd64": layer("amd64", map[string]string{"arch": "amd64\n"}),
		"arm64": layer("arm64", map[string]string{"arch": "arm64\n"}),
	}

	// Docker schema2 image and a second tag on it.
	s.D["alpine"] = craneAppend(t, ref(repoAlpine+":latest"), false, base)
	add(repoAlpine, s.D["alpine"])
	craneTag(t, ref(repoAlpine+":latest"), "edge")

	// OCI image, retagged.
	s.D["app-v1"] = craneAppend(t, ref(repoApp+":v1"), true, app)
	add(repoApp, s.D["app-v1"])
	craneTag(t, ref(repoApp+":v1"), "stable")

	// Nested repository sharing a layer with its parent.
	s.D["web"] = craneAppend(t, ref(repoWeb+":1.0"), true, app, web)
	add(repoWeb, s.D["web"])

	// A moved tag.
	s.D["app-old"] = craneAppend(t, ref(repoApp+":latest"), true, app2)
	add(repoApp, s.D["app-old"])
	s.D["app-v2"] = craneAppend(t, ref(repoApp+":latest"), true, app, app2)
	add(repoApp, s.D["app-v2"])

	// Per-arch children, then an OCI index and a Docker manifest list.
	for _, arch := range []string{"amd64", "arm64"} {
		for _, docker := range []bool{false, true} {
			tag := arch
			if docker {
				tag += "-docker"
			}
			raw := craneAppend(t, ref(repoSrc+":"+tag), !docker, archLayers[arch])
			add(repoSrc, raw)
			d := craneSetPlatform(t, ref(repoSrc+":"+tag), "linux/"+arch, ref(repoSrc+":"+tag))
			add(repoSrc, d)
			s.D["src-"+tag] = d
		}
	}
	s.D["index"] = craneIndexAppend(t, ref(repoArch+":latest"), false,
		ref(repoSrc+":amd64"), ref(repoSrc+":arm64"))
	s.D["list"] = craneIndexAppend(t, ref(repoArch+":list"), true,
		ref(repoSrc+":amd64-docker"), ref(repoSrc+":arm64-docker"))
	for _, k := range []string{"index", "list", "src-amd64", "src-arm64", "src-amd64-docker", "src-arm64-docker"} {
		add(repoArch, s.D[k])
	}

	// Record every manifest body while everything is still there.
	for repo, ds := range known {
		for d := range ds {
			m := getManifest(t, host, repo, d)
			require.Equal(t, http.StatusOK, m.Status, "GET %s@%s", repo, d)
			require.Equal(t, d, digestOf(m.Body), "GET %s@%s body digest", repo, d)
			s.Bodies[d] = m.Body
		}
	}

	// Delete a tag through the API.
	s.TagDeleteStatus = deleteTag(t, host, repoAlpine, "edge")
	if reg.Version == V3 {
		assert.Equal(t, http.StatusAccepted, s.TagDeleteStatus, "v3 DELETE tag")
		s.Expect.DeletedTags = map[string][]string{repoAlpine: {"edge"}}
	} else {
		assert.Equal(t, http.StatusBadRequest, s.TagDeleteStatus, "2.8 DELETE tag is not implemented")
	}

	// Push then delete a manifest by digest.
	s.D["tmp"] = craneAppend(t, ref(repoApp+":tmp"), true, tmp)
	add(repoApp, s.D["tmp"])
	m := getManifest(t, host, repoApp, s.D["tmp"])
	require.Equal(t, http.StatusOK, m.Status)
	s.Bodies[s.D["tmp"]] = m.Body
	require.Equal(t, http.StatusAccepted, deleteManifest(t, host, repoApp, s.D["tmp"]), "DELETE manifest by digest")
	s.Expect.DeletedManifests = map[string][]string{repoApp: {s.D["tmp"]}}

	// Abandoned upload.
	s.UploadRepo, s.UploadData = repoWeb, []byte("abandoned upload")
	s.Upload = patchUpload(t, startUpload(t, host, repoWeb), s.UploadData)
	s.Expect.Uploads = map[string][]string{repoWeb: {s.Upload.UUID}}

	s.recordAPI(t, host, known)
	return s
}

// recordAPI fills s.Expect from the running registry.
func (s *scenario) recordAPI(t *testing.T, host string, known map[string]map[string]bool) {
	t.Helper()
	e := &s.Expect
	e.Catalog = catalog(t, host, 0)
	assert.Equal(t, e.Catalog, catalog(t, host, 2), "catalog with n=2 pagination")
	repos := sortedKeys(known)
	assert.ElementsMatch(t, repos, e.Catalog, "catalog lists exactly the pushed repositories")

	e.Tags = map[string]map[string]string{}
	e.Manifests = map[string][]string{}
	e.Blobs = map[string][]string{}
	e.MediaTypes = map[string]string{}
	for _, repo := range e.Catalog {
		tags, status := listTags(t, host, repo)
		require.Equal(t, http.StatusOK, status, "tags of %s", repo)
		e.Tags[repo] = map[string]string{}
		for _, tag := range tags {
			m := headManifest(t, host, repo, tag)
			require.Equal(t, http.StatusOK, m.Status, "HEAD %s:%s", repo, tag)
			e.Tags[repo][tag] = m.Digest
		}
	}
	for _, repo := range repos {
		deleted := map[string]bool{}
		for _, d := range e.DeletedManifests[repo] {
			deleted[d] = true
			assert.Equal(t, http.StatusNotFound, headManifest(t, host, repo, d).Status, "deleted %s@%s", repo, d)
		}
		blobs := map[string]bool{}
		for d := range known[repo] {
			// Blobs of deleted manifests stay linked and pullable.
			_, refs, _ := manifestRefs(t, s.Bodies[d])
			for _, b := range refs {
				if assert.Equal(t, http.StatusOK, headBlob(t, host, repo, b), "HEAD blob %s@%s", repo, b) {
					blobs[b] = true
				}
			}
			if deleted[d] {
				continue
			}
			m := headManifest(t, host, repo, d)
			if !assert.Equal(t, http.StatusOK, m.Status, "HEAD %s@%s", repo, d) {
				continue
			}
			assert.Equal(t, d, m.Digest, "Docker-Content-Digest of %s@%s", repo, d)
			mt, _, children := manifestRefs(t, s.Bodies[d])
			assert.Equal(t, mt, m.ContentType, "Content-Type of %s@%s equals its mediaType", repo, d)
			for _, c := range children {
				assert.True(t, known[repo][c], "index child %s is in %s", c, repo)
			}
			e.Manifests[repo] = append(e.Manifests[repo], d)
			e.MediaTypes[d] = m.ContentType
			// Manifests are not blobs of the repository (no _layers link).
			assert.Equal(t, http.StatusNotFound, headBlob(t, host, repo, d), "manifest %s@%s as a blob", repo, d)
		}
		sort.Strings(e.Manifests[repo])
		e.Blobs[repo] = sortedKeys(blobs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// verifyExpect checks that the registry at host serves exactly what exp
// records: catalog (same order on v3, same set on 2.8), tags and their
// digests, every manifest by digest (with its media type and body digest),
// every blob (body digest), and 404 for deleted manifests.
func verifyExpect(t *testing.T, host, version string, exp Expect) {
	t.Helper()
	got := catalog(t, host, 0)
	if version == V28 {
		assert.ElementsMatch(t, exp.Catalog, got, "catalog (2.8 order is directory order)")
	} else {
		assert.Equal(t, exp.Catalog, got, "catalog")
	}
	for repo, tags := range exp.Tags {
		names, status := listTags(t, host, repo)
		if !assert.Equal(t, http.StatusOK, status, "tags of %s", repo) {
			continue
		}
		assert.ElementsMatch(t, sortedKeys(tags), names, "tags of %s", repo)
		for tag, d := range tags {
			m := headManifest(t, host, repo, tag)
			if assert.Equal(t, http.StatusOK, m.Status, "HEAD %s:%s", repo, tag) {
				assert.Equal(t, d, m.Digest, "%s:%s", repo, tag)
			}
		}
	}
	for repo, ds := range exp.Manifests {
		for _, d := range ds {
			m := getManifest(t, host, repo, d)
			if !assert.Equal(t, http.StatusOK, m.Status, "GET %s@%s", repo, d) {
				continue
			}
			assert.Equal(t, d, digestOf(m.Body), "body of %s@%s", repo, d)
			assert.Equal(t, d, m.Digest, "Docker-Content-Digest of %s@%s", repo, d)
			if mt, ok := exp.MediaTypes[d]; ok {
				assert.Equal(t, mt, m.ContentType, "Content-Type of %s@%s", repo, d)
			}
		}
	}
	for repo, ds := range exp.Blobs {
		for _, d := range ds {
			b := getBlob(t, host, repo, d)
			if assert.Equal(t, http.StatusOK, b.Status, "GET blob %s@%s", repo, d) {
				assert.Equal(t, d, digestOf(b.Body), "blob %s@%s", repo, d)
			}
		}
	}
	for repo, ds := range exp.DeletedManifests {
		for _, d := range ds {
			assert.Equal(t, http.StatusNotFound, headManifest(t, host, repo, d).Status, "deleted %s@%s", repo, d)
		}
	}
}

// readExpect loads an expect.json file.
func readExpect(t testing.TB, path string) Expect {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var e Expect
	require.NoError(t, json.Unmarshal(b, &e), path)
	return e
}

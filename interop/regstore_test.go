package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/internal/treearchive"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openStore opens the storage rootdirectory root with regstore (a Dir
// backend, closed at the end of the test).
func openStore(t testing.TB, root string) *regstore.Store {
	t.Helper()
	require.NoError(t, os.MkdirAll(root, 0o755))
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	s, err := regstore.Open(d)
	require.NoError(t, err)
	return s
}

func storeRepo(t testing.TB, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err)
	return r
}

// Direction 1: regstore writes, the registry and its clients read.

// Repositories of the regstore-written tree, in the order the v3 catalog
// lists them on the filesystem driver: team/app/0 sorts before team/app's
// own _manifests ('0' < '_'), and team/app-cli after team/app/web (a
// per-directory walk, not sort.Strings, which would put "team/app-cli"
// before "team/app/web" since '-' < '/').
var regstoreCatalog = []string{"library/alpine", "team/app/0", "team/app", "team/app/web", "team/app-cli"}

const (
	artifactType      = "application/vnd.example.signature.v1"
	artifactLayerType = "application/vnd.example.signature.v1+json"
)

// regstoreTree is what buildRegstoreTree wrote.
type regstoreTree struct {
	Root string
	// Tags maps repo -> tag -> manifest, as finally set.
	Tags map[string]map[string]*regstore.Manifest
	// Manifests maps repo -> every manifest pushed there.
	Manifests map[string][]*regstore.Manifest
	// Shared is the layer every repository links.
	Shared digest.Digest
	// Named manifests: docker, app-v1, app-v2, amd64, arm64, amd64-docker,
	// arm64-docker, list, index, nested, sig.
	M map[string]*regstore.Manifest
}

// buildRegstoreTree writes, with regstore only, a tree below root:
//
//	library/alpine:latest,3.20  Docker schema2 image
//	team/app/0:v0               OCI image (its shared layer mounted from library/alpine)
//	team/app:v1                 OCI image; :stable first on it, then moved (Tag.Set) to v2
//	team/app:v2,latest,stable   OCI image
//	team/app/web:list           Docker manifest list of two Docker images (untagged children)
//	team/app/web:index          OCI index of two OCI images (untagged children)
//	team/app/web:nested         OCI index whose only child is the OCI index :index
//	team/app/web:sha256-<hex>   artifact manifest: config is the OCI empty descriptor {},
//	                            artifactType set, subject = the amd64 OCI image (the tag is
//	                            the referrers tag schema a client uses without a referrers API)
//	team/app-cli:1.0            Docker schema2 image
//
// One layer is shared by every repository.
func buildRegstoreTree(t *testing.T, root string) *regstoreTree {
	t.Helper()
	s := openStore(t, root)
	rt := &regstoreTree{Root: root, Tags: map[string]map[string]*regstore.Manifest{},
		Manifests: map[string][]*regstore.Manifest{}, M: map[string]*regstore.Manifest{}}
	add := func(repo *regstore.Repository, name string, m *regstore.Manifest, tags ...string) {
		rt.Manifests[repo.Name()] = append(rt.Manifests[repo.Name()], m)
		rt.M[name] = m
		if rt.Tags[repo.Name()] == nil {
			rt.Tags[repo.Name()] = map[string]*regstore.Manifest{}
		}
		for _, tag := range tags {
			rt.Tags[repo.Name()][tag] = m
		}
	}
	push := func(repo *regstore.Repository, name string, img regstoretest.Image, tags ...string) *regstore.Manifest {
		m := regstoretest.Push(t, repo, img, tags...)
		add(repo, name, m, tags...)
		return m
	}
	layer := func(files ...string) regstoretest.Layer {
		f := map[string]string{}
		for i := 0; i < len(files); i += 2 {
			f[files[i]] = files[i+1]
		}
		return regstoretest.NewLayer(f)
	}
	shared := layer("etc/os-release", "NAME=regstore\n")
	rt.Shared = digest.FromBytes(shared.Compressed)

	alpine := storeRepo(t, s, "library/alpine")
	push(alpine, "docker", regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{shared, regstoretest.RandomLayer(1, 300)}}, "latest", "3.20")

	zero := storeRepo(t, s, "team/app/0")
	_, err := zero.Mount(alpine, rt.Shared)
	require.NoError(t, err, "Mount")
	push(zero, "zero", regstoretest.Image{Layers: []regstoretest.Layer{shared}}, "v0")

	app := storeRepo(t, s, "team/app")
	appV1 := push(app, "app-v1", regstoretest.Image{Layers: []regstoretest.Layer{shared, layer("app/bin", "v1\n")}}, "v1", "stable")
	appV2 := push(app, "app-v2", regstoretest.Image{Layers: []regstoretest.Layer{shared, layer("app/bin", "v1\n"), layer("app/bin", "v2\n")}}, "v2", "latest")
	stable, err := app.Tag("stable")
	require.NoError(t, err)
	require.NoError(t, stable.Set(appV2.Digest()), "Tag.Set moves stable")
	rt.Tags[app.Name()]["stable"] = appV2
	hist := collectSeq(t, stable.History())
	require.ElementsMatch(t, []digest.Digest{appV1.Digest(), appV2.Digest()}, hist, "moved tag keeps its history")

	web := storeRepo(t, s, "team/app/web")
	img := func(mt, arch string) regstoretest.Image {
		return regstoretest.Image{MediaType: mt, Architecture: arch,
			Layers: []regstoretest.Layer{shared, layer("web/index.html", "<h1>"+arch+"</h1>\n")}}
	}
	amd := push(web, "amd64", img(regstore.MediaTypeOCIManifest, "amd64"))
	arm := push(web, "arm64", img(regstore.MediaTypeOCIManifest, "arm64"))
	amdD := push(web, "amd64-docker", img(regstore.MediaTypeDockerManifest, "amd64"))
	armD := push(web, "arm64-docker", img(regstore.MediaTypeDockerManifest, "arm64"))
	list := regstoretest.PushIndex(t, web, regstore.MediaTypeDockerManifestList, []*regstore.Manifest{amdD, armD}, "list")
	add(web, "list", list, "list")
	idx := regstoretest.PushIndex(t, web, regstore.MediaTypeOCIIndex, []*regstore.Manifest{amd, arm}, "index")
	add(web, "index", idx, "index")
	nested := regstoretest.PushIndex(t, web, regstore.MediaTypeOCIIndex, []*regstore.Manifest{idx}, "nested")
	add(web, "nested", nested, "nested")

	// An artifact (a signature of the amd64 image): the OCI empty config,
	// a non-tar layer, artifactType and subject.
	// (The blobs are put with no expected digest: Repository.PutBlob with
	// a sha256 digest writes no _layers link, see
	// TestRepositoryPutBlobLinksCanonicalDigest.)
	empty, err := web.PutBlob(bytes.NewReader([]byte("{}")), "", 2)
	require.NoError(t, err)
	require.Equal(t, v1.DescriptorEmptyJSON.Digest, empty.Digest())
	sigBody := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + amd.Digest().String() + `"}}}`)
	sigBlob, err := web.PutBlob(bytes.NewReader(sigBody), "", int64(len(sigBody)))
	require.NoError(t, err)
	subject := amd.Descriptor()
	sigManifest, err := json.MarshalIndent(v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       v1.DescriptorEmptyJSON,
		Layers:       []v1.Descriptor{{MediaType: artifactLayerType, Digest: sigBlob.Digest(), Size: sigBlob.Size()}},
		Subject:      &subject,
		Annotations:  map[string]string{"org.example.signed-by": "regstore interop"},
	}, "", "  ")
	require.NoError(t, err)
	refTag := strings.Replace(amd.Digest().String(), ":", "-", 1)
	sig, err := web.PutManifest(regstore.MediaTypeOCIManifest, sigManifest, refTag)
	require.NoError(t, err)
	add(web, "sig", sig, refTag)
	require.Equal(t, artifactType, sig.ArtifactType())

	cli := storeRepo(t, s, "team/app-cli")
	push(cli, "cli", regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{shared, layer("usr/bin/cli", "#!/bin/sh\necho cli\n")}}, "1.0")

	// What regstore itself reads back is what was written.
	got, err := s.Catalog(0, "")
	require.NoError(t, err)
	require.Equal(t, regstoreCatalog, got, "regstore's own catalog order")
	for e, err := range s.Walk() {
		require.NoError(t, err)
		require.NotEqual(t, regstore.UnknownFile, e.Kind, e.Path)
		require.NotEqual(t, regstore.TempFile, e.Kind, e.Path)
	}
	return rt
}

func collectSeq[T any](t testing.TB, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

// TestRegstoreWritesTree (direction 1: we write, they read) builds a tree
// with regstore alone, starts each registry version on it and checks that
// the API serves exactly what was written, that crane and skopeo pull every
// tag, and that crane validate passes for every tag.
func TestRegstoreWritesTree(t *testing.T) {
	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			registryBinary(t, version)
			root := filepath.Join(t.TempDir(), "root")
			rt := buildRegstoreTree(t, root)
			before := snapshotTree(t, root)
			reg := startRegistry(t, version, root, RegistryOptions{})

			t.Run("catalog", func(t *testing.T) {
				got := catalog(t, reg.Host, 0)
				if version == V3 {
					assert.Equal(t, regstoreCatalog, got, "v3 lists regstore's order")
				} else {
					assert.ElementsMatch(t, regstoreCatalog, got, "2.8 lists directory order")
				}
			})

			t.Run("tags", func(t *testing.T) {
				for _, repo := range regstoreCatalog {
					got, status := listTags(t, reg.Host, repo)
					require.Equal(t, http.StatusOK, status, repo)
					want := sortedKeys(rt.Tags[repo])
					if version == V3 {
						assert.Equal(t, want, got, "tags of %s", repo)
					} else {
						assert.ElementsMatch(t, want, got, "tags of %s", repo)
					}
				}
			})

			t.Run("manifests", func(t *testing.T) {
				check := func(repo, ref string, m *regstore.Manifest) {
					res := getManifest(t, reg.Host, repo, ref)
					if !assert.Equal(t, http.StatusOK, res.Status, "GET %s/manifests/%s: %s", repo, ref, res.Body) {
						return
					}
					assert.Equal(t, m.MediaType(), res.ContentType, "Content-Type of %s/%s", repo, ref)
					assert.Equal(t, m.Digest().String(), res.Digest, "Docker-Content-Digest of %s/%s", repo, ref)
					assert.Equal(t, m.Bytes(), res.Body, "bytes of %s/%s", repo, ref)
				}
				for repo, tags := range rt.Tags {
					for tag, m := range tags {
						check(repo, tag, m)
					}
				}
				for repo, ms := range rt.Manifests {
					for _, m := range ms {
						check(repo, m.Digest().String(), m)
						assert.Equal(t, http.StatusNotFound, headBlob(t, reg.Host, repo, m.Digest().String()),
							"manifest %s@%s is not a blob of its repository", repo, m.Digest())
					}
				}
			})

			t.Run("blobs", func(t *testing.T) {
				s := openStore(t, root)
				for _, repo := range regstoreCatalog {
					ds := collectSeq(t, storeRepo(t, s, repo).Layers())
					assert.Contains(t, ds, rt.Shared, "%s links the shared layer", repo)
					// Every config and layer of every manifest is linked.
					for _, m := range rt.Manifests[repo] {
						for d := range m.Blobs() {
							assert.Contains(t, ds, d.Digest, "%s@%s needs %s", repo, m.Digest(), d.Digest)
						}
					}
					for _, d := range ds {
						b := getBlob(t, reg.Host, repo, d.String())
						if assert.Equal(t, http.StatusOK, b.Status, "GET %s/blobs/%s", repo, d) {
							assert.Equal(t, d.String(), digestOf(b.Body))
						}
					}
				}
			})

			t.Run("referrers", func(t *testing.T) {
				// Neither version has the referrers API: the artifact is
				// found through its referrers-tag-schema tag instead.
				sub := rt.M["amd64"].Digest().String()
				res := httpDo(t, http.MethodGet, "http://"+reg.Host+"/v2/team/app/web/referrers/"+sub, nil, nil)
				assert.Equal(t, http.StatusNotFound, res.Status, "GET referrers: %s", res.Body)
				m := getManifest(t, reg.Host, "team/app/web", strings.Replace(sub, ":", "-", 1))
				assert.Equal(t, http.StatusOK, m.Status)
				assert.Equal(t, rt.M["sig"].Digest().String(), m.Digest)
			})

			t.Run("clients", func(t *testing.T) {
				requireBinary(t, "crane")
				for _, repo := range regstoreCatalog {
					for _, tag := range sortedKeys(rt.Tags[repo]) {
						m := rt.Tags[repo][tag]
						ref := reg.Ref(repo + ":" + tag)
						t.Run(repo+":"+tag, func(t *testing.T) {
							t.Parallel()
							dir := t.TempDir()
							cranePullOCI(t, ref, filepath.Join(dir, "crane"))
							// Also passes for the artifact (crane 0.22.1 checks
							// its blobs' digests and sizes).
							craneValidate(t, ref)
							bin := requireBinary(t, "skopeo")
							args := []string{"--insecure-policy", "copy", "--src-tls-verify=false"}
							if m.IsIndex() {
								args = append(args, "--all")
							}
							args = append(args, "docker://"+ref, "oci:"+filepath.Join(dir, "skopeo")+":"+tag)
							_, out, err := runTool(t, bin, args...)
							if tag == "nested" && err != nil {
								// skopeo 1.9.3 (containers/image) cannot copy an
								// index nested in an index, with or without
								// --all; crane can (above). Not a tree problem.
								assert.Contains(t, out, "Unexpectedly received a manifest list instead of a manifest for a single image",
									"skopeo %s", strings.Join(args, " "))
								return
							}
							assert.NoError(t, err, "skopeo %s\n%s", strings.Join(args, " "), out)
						})
					}
				}
			})

			reg.Stop()
			assert.Equal(t, before, snapshotTree(t, root), "serving and pulling changed nothing on disk")
		})
	}
}

// TestRepositoryPutBlobLinksCanonicalDigest: a blob put, or mounted, by
// its own sha256 digest must be linked in the repository, as the registry's
// upload commit (?digest=sha256:...) and cross-repository mount do. This is
// how an artifact's OCI empty config {} is normally pushed: by its
// well-known digest. No peer is needed.
func TestRepositoryPutBlobLinksCanonicalDigest(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	a, b := storeRepo(t, s, "a"), storeRepo(t, s, "b")
	d := v1.DescriptorEmptyJSON.Digest

	put, err := a.PutBlob(bytes.NewReader([]byte("{}")), d, 2)
	require.NoError(t, err)
	require.Equal(t, d, put.Digest())
	_, err = a.Blob(d)
	assert.NoError(t, err, "Repository.PutBlob(%s) must write _layers/sha256/<hex>/link", d)

	_, err = a.LinkBlob(d) // so that the mount has a source either way
	require.NoError(t, err)
	_, err = b.Mount(a, d)
	require.NoError(t, err)
	_, err = b.Blob(d)
	assert.NoError(t, err, "Repository.Mount(a, %s) must write b's _layers link", d)
}

// Trees written by a real registry (populateRegistry), archived once per
// registry version per test binary and materialised afresh for each test
// that needs one, so that the crane pushes run once.
var populated = map[string]*populatedTree{V3: {}, V28: {}}

type populatedTree struct {
	once    sync.Once
	archive *treearchive.Archive
	s       *scenario
}

// registryTree returns a fresh copy of a tree the registry version wrote
// with populateRegistry (stopped), and what its API reported.
func registryTree(t *testing.T, version string) (root string, s *scenario) {
	t.Helper()
	requireBinary(t, "crane")
	registryBinary(t, version)
	p := populated[version]
	p.once.Do(func() {
		dir := filepath.Join(t.TempDir(), "populate")
		reg := startRegistry(t, version, dir, RegistryOptions{})
		sc := populateRegistry(t, reg)
		reg.Stop()
		a, err := treearchive.FromDir(dir, "")
		require.NoError(t, err)
		p.archive, p.s = a, sc
	})
	require.NotNil(t, p.archive, "populating a %s registry failed in an earlier test", version)
	root = filepath.Join(t.TempDir(), "root")
	require.NoError(t, treearchive.ToDir(p.archive, root))
	return root, p.s
}

// checkStoreReadsExpect asserts that regstore reads, in the tree below root,
// exactly what the registry's API reported (exp), with the manifest bytes
// it served (bodies, when known).
func checkStoreReadsExpect(t *testing.T, root, version string, exp Expect, bodies map[string][]byte) {
	s := openStore(t, root)
	got, err := s.Catalog(0, "")
	require.NoError(t, err)
	if version == V3 {
		assert.Equal(t, exp.Catalog, got, "catalog")
	} else {
		assert.ElementsMatch(t, exp.Catalog, got, "catalog (2.8 lists directory order)")
	}
	for _, repo := range exp.Catalog {
		r := storeRepo(t, s, repo)
		tags := map[string]string{}
		for tg, err := range r.Tags() {
			require.NoError(t, err)
			m, err := tg.Resolve()
			if assert.NoError(t, err, "Resolve(%s)", tg) {
				tags[tg.Name()] = m.Digest().String()
			}
		}
		assert.Equal(t, exp.Tags[repo], tags, "tags of %s", repo)

		var mans []string
		for d, err := range r.Manifests() {
			require.NoError(t, err)
			mans = append(mans, d.String())
		}
		assert.ElementsMatch(t, exp.Manifests[repo], mans, "manifests of %s", repo)
		for _, d := range exp.Manifests[repo] {
			m, err := r.Manifest(digest.Digest(d))
			if !assert.NoError(t, err, "Manifest(%s@%s)", repo, d) {
				continue
			}
			assert.Equal(t, exp.MediaTypes[d], m.MediaType(), "media type of %s@%s", repo, d)
			if b, ok := bodies[d]; ok {
				assert.Equal(t, b, m.Bytes(), "bytes of %s@%s", repo, d)
			}
		}
		for _, d := range exp.DeletedManifests[repo] {
			_, err := r.Manifest(digest.Digest(d))
			assert.ErrorIs(t, err, fs.ErrNotExist, "deleted %s@%s", repo, d)
		}
		for _, tag := range exp.DeletedTags[repo] {
			tg, err := r.Tag(tag)
			require.NoError(t, err)
			_, err = tg.Digest()
			assert.ErrorIs(t, err, fs.ErrNotExist, "deleted tag %s:%s", repo, tag)
		}

		var layers []string
		for d, err := range r.Layers() {
			require.NoError(t, err)
			layers = append(layers, d.String())
		}
		assert.ElementsMatch(t, exp.Blobs[repo], layers, "blobs of %s", repo)
		for _, d := range exp.Blobs[repo] {
			b, err := r.Blob(digest.Digest(d))
			if assert.NoError(t, err, "Blob(%s@%s)", repo, d) {
				assert.NoError(t, b.Verify(), "Verify(%s@%s)", repo, d)
			}
		}

		var ups []string
		for u, err := range r.Uploads() {
			require.NoError(t, err)
			ups = append(ups, u.ID)
		}
		assert.Equal(t, exp.Uploads[repo], ups, "uploads of %s", repo)
	}
	for e, err := range s.Walk() {
		require.NoError(t, err)
		assert.NotEqual(t, regstore.UnknownFile, e.Kind, "unclassified %s", e.Path)
	}
}

// TestRegstoreReadsRegistryTree (direction 2: they write, we read) reads a
// tree the registry just wrote through its API (crane pushes, a tag and a
// manifest deleted, an abandoned upload) and checks regstore sees exactly
// what the API reported.
func TestRegstoreReadsRegistryTree(t *testing.T) {
	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			root, s := registryTree(t, version)
			checkStoreReadsExpect(t, root, version, s.Expect, s.Bodies)
		})
	}
}

// apiAnswers probes a registry for everything exp names and
// returns one line per request: the status and what identifies the answer
// (digest headers and body digests). Two registries that answer the same
// map are indistinguishable to a client for these refs.
func apiAnswers(t *testing.T, host string, exp Expect) map[string]string {
	t.Helper()
	out := map[string]string{}
	cat := catalog(t, host, 0)
	sort.Strings(cat) // 2.8 order is directory order; v3 order is checked elsewhere
	out["GET /v2/_catalog"] = strings.Join(cat, ",")
	for _, repo := range exp.Catalog {
		tags, status := listTags(t, host, repo)
		sort.Strings(tags)
		out["GET /v2/"+repo+"/tags/list"] = fmt.Sprintf("%d %s", status, strings.Join(tags, ","))
		if len(tags) == 0 {
			// The exact body: "tags":[] and "tags":null differ to clients.
			res := httpDo(t, http.MethodGet, "http://"+host+"/v2/"+repo+"/tags/list", nil, nil)
			out["GET /v2/"+repo+"/tags/list body"] = strings.TrimSpace(string(res.Body))
		}
		refs := slices.Concat(sortedKeys(exp.Tags[repo]), exp.DeletedTags[repo],
			exp.Manifests[repo], exp.DeletedManifests[repo])
		for _, ref := range refs {
			m := getManifest(t, host, repo, ref)
			ans := fmt.Sprint(m.Status)
			if m.Status == http.StatusOK {
				ans += " " + m.Digest + " " + digestOf(m.Body) + " " + m.ContentType
			}
			out["GET /v2/"+repo+"/manifests/"+ref] = ans
		}
		for _, d := range exp.Blobs[repo] {
			b := getBlob(t, host, repo, d)
			ans := fmt.Sprint(b.Status)
			if b.Status == http.StatusOK {
				ans += " " + digestOf(b.Body)
			}
			out["GET /v2/"+repo+"/blobs/"+d] = ans
		}
	}
	return out
}

// TestMixedDeletes (direction 3: mixed) applies the same deletes to two
// copies of a registry-written tree, with regstore on one and the registry's
// own DELETE API on the other, then serves both and checks that the
// registry answers identically, and that the trees are identical on disk.
func TestMixedDeletes(t *testing.T) {
	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			ours, s := registryTree(t, version)
			theirs, _ := registryTree(t, version)
			exp := s.Expect
			_, webBlobs, _ := manifestRefs(t, s.Bodies[s.D["web"]])
			appLayer := webBlobs[1] // team/app/web:1.0 = [app, web]: the layer it shares with team/app
			manifestDeletes := []struct{ repo, digest string }{
				{repoApp, s.D["app-v2"]},     // team/app:latest points at it
				{repoAlpine, s.D["alpine"]},  // every tag of library/alpine points at it
				{repoArch, s.D["src-amd64"]}, // a child of multi/arch:latest
			}

			// regstore on one copy.
			st := openStore(t, ours)
			if version == V3 {
				tg, err := storeRepo(t, st, repoApp).Tag("stable")
				require.NoError(t, err)
				require.NoError(t, tg.Delete(), "Tag.Delete")
			}
			for _, md := range manifestDeletes {
				require.NoError(t, storeRepo(t, st, md.repo).DeleteManifest(digest.Digest(md.digest)), "DeleteManifest(%s@%s)", md.repo, md.digest)
			}
			require.NoError(t, storeRepo(t, st, repoWeb).UnlinkBlob(digest.Digest(appLayer)), "UnlinkBlob")

			// The registry's API on the other.
			reg := startRegistry(t, version, theirs, RegistryOptions{})
			if version == V3 {
				assert.Equal(t, http.StatusAccepted, deleteTag(t, reg.Host, repoApp, "stable"), "v3 DELETE tag")
			} else {
				// 2.8 has no tag delete: the tag is not deleted on either copy.
				assert.Equal(t, http.StatusBadRequest, deleteTag(t, reg.Host, repoApp, "stable"), "2.8 DELETE tag")
			}
			for _, md := range manifestDeletes {
				assert.Equal(t, http.StatusAccepted, deleteManifest(t, reg.Host, md.repo, md.digest), "DELETE %s@%s", md.repo, md.digest)
			}
			res := httpDo(t, http.MethodDelete, "http://"+reg.Host+"/v2/"+repoWeb+"/blobs/"+appLayer, nil, nil)
			assert.Equal(t, http.StatusAccepted, res.Status, "DELETE blob: %s", res.Body)
			reg.Stop()

			regOurs := startRegistry(t, version, ours, RegistryOptions{ReadOnly: true})
			regTheirs := startRegistry(t, version, theirs, RegistryOptions{ReadOnly: true})
			a := apiAnswers(t, regOurs.Host, exp)
			b := apiAnswers(t, regTheirs.Host, exp)
			assert.Equal(t, b, a, "the registry answers identically on both trees")
			if version == V3 {
				assert.Equal(t, catalog(t, regTheirs.Host, 0), catalog(t, regOurs.Host, 0), "catalog order")
			}

			// The affected refs changed, the others did not.
			deleted := func(repo, ref string) {
				assert.Equal(t, "404", a["GET /v2/"+repo+"/manifests/"+ref], "%s/%s", repo, ref)
			}
			served := func(repo, ref string) {
				assert.True(t, strings.HasPrefix(a["GET /v2/"+repo+"/manifests/"+ref], "200 "), "%s/%s: %s", repo, ref, a["GET /v2/"+repo+"/manifests/"+ref])
			}
			deleted(repoApp, "latest")
			deleted(repoApp, s.D["app-v2"])
			served(repoApp, "v1")
			served(repoApp, s.D["app-old"])
			if version == V3 {
				deleted(repoApp, "stable")
				served(repoApp, s.D["app-v1"]) // untagged now, still pullable by digest
				assert.Equal(t, "200 v1", a["GET /v2/"+repoApp+"/tags/list"])
			} else {
				served(repoApp, "stable")
				assert.Equal(t, "200 stable,v1", a["GET /v2/"+repoApp+"/tags/list"])
			}
			deleted(repoAlpine, "latest")
			deleted(repoAlpine, s.D["alpine"])
			// An emptied tags/ directory: the repository is still listed.
			assert.Equal(t, "200 ", a["GET /v2/"+repoAlpine+"/tags/list"], "library/alpine has no tags left")
			if version == V3 {
				assert.JSONEq(t, `{"name":"library/alpine","tags":[]}`, a["GET /v2/"+repoAlpine+"/tags/list body"])
			} else {
				// 2.8 answers null, not [], for an emptied tags/ directory.
				assert.JSONEq(t, `{"name":"library/alpine","tags":null}`, a["GET /v2/"+repoAlpine+"/tags/list body"])
			}
			assert.Contains(t, a["GET /v2/_catalog"], repoAlpine)
			deleted(repoArch, s.D["src-amd64"])
			served(repoArch, "latest") // the index still serves; its amd64 child does not
			served(repoSrc, s.D["src-amd64"])
			assert.Equal(t, "404", a["GET /v2/"+repoWeb+"/blobs/"+appLayer])
			assert.True(t, strings.HasPrefix(a["GET /v2/"+repoApp+"/blobs/"+appLayer], "200 "))
			served(repoWeb, "1.0") // the manifest still serves; its layer does not

			regOurs.Stop()
			regTheirs.Stop()
			compareTrees(t, theirs, ours)
		})
	}
}

// gcReport is what `registry garbage-collect --dry-run` printed (v3 output
// format).
type gcReport struct {
	Blobs      []string            // blob eligible for deletion: <digest>
	LayerLinks map[string][]string // <repo>: layer link eligible for deletion: <digest>
	Manifests  map[string][]string // manifest eligible for deletion: {<repo> <digest> [tags]}
	// ManifestTags maps "<repo>@<digest>" -> the tags printed with it.
	ManifestTags map[string]string
	// Marked, EligibleBlobs, EligibleManifests are from
	// "<N> blobs marked, <M> blobs and <K> manifests eligible for deletion".
	Marked, EligibleBlobs, EligibleManifests int
	// NoTags lists the repositories reported as
	// "manifest tags path of repository <repo> does not exist".
	NoTags []string
}

var (
	gcBlobRE     = regexp.MustCompile(`^blob eligible for deletion: (sha256:[0-9a-f]{64})$`)
	gcLinkRE     = regexp.MustCompile(`^(\S+): layer link eligible for deletion: (sha256:[0-9a-f]{64})$`)
	gcManifestRE = regexp.MustCompile(`^manifest eligible for deletion: \{(\S+) (sha256:[0-9a-f]{64}) \[(.*)\]\}$`)
	gcSummaryRE  = regexp.MustCompile(`^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion$`)
	gcNoTagsRE   = regexp.MustCompile(`^manifest tags path of repository (\S+) does not exist$`)
)

func parseGCOutput(t *testing.T, out string) gcReport {
	t.Helper()
	r := gcReport{LayerLinks: map[string][]string{}, Manifests: map[string][]string{}, ManifestTags: map[string]string{}}
	summary := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, " ")
		if m := gcBlobRE.FindStringSubmatch(line); m != nil {
			r.Blobs = append(r.Blobs, m[1])
		} else if m := gcLinkRE.FindStringSubmatch(line); m != nil {
			r.LayerLinks[m[1]] = append(r.LayerLinks[m[1]], m[2])
		} else if m := gcManifestRE.FindStringSubmatch(line); m != nil {
			r.Manifests[m[1]] = append(r.Manifests[m[1]], m[2])
			r.ManifestTags[m[1]+"@"+m[2]] = m[3]
		} else if m := gcSummaryRE.FindStringSubmatch(line); m != nil {
			summary = true
			r.Marked, _ = strconv.Atoi(m[1])
			r.EligibleBlobs, _ = strconv.Atoi(m[2])
			r.EligibleManifests, _ = strconv.Atoi(m[3])
		} else if m := gcNoTagsRE.FindStringSubmatch(line); m != nil {
			r.NoTags = append(r.NoTags, m[1])
		}
	}
	require.True(t, summary, "no summary line in garbage-collect output:\n%s", out)
	require.Len(t, r.Blobs, r.EligibleBlobs, "blob lines vs summary")
	sort.Strings(r.Blobs)
	for _, m := range []map[string][]string{r.LayerLinks, r.Manifests} {
		for k := range m {
			sort.Strings(m[k])
		}
	}
	return r
}

// planStrings turns a plan's digests into the report's shape.
func planStrings(plan *gc.Plan) (blobs []string, links, manifests map[string][]string) {
	conv := func(m map[string][]digest.Digest) map[string][]string {
		out := map[string][]string{}
		for k, ds := range m {
			if len(ds) > 0 {
				out[k] = strs(ds)
				sort.Strings(out[k])
			}
		}
		return out
	}
	blobs = strs(plan.Blobs)
	sort.Strings(blobs)
	return blobs, conv(plan.LayerLinks), conv(plan.Manifests)
}

func strs[T ~string](xs []T) []string {
	if len(xs) == 0 {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// TestGCParity compares regstore's garbage collection with the v3
// registry's on trees the v3 registry wrote: the committed testdata tree
// and a freshly populated one, with and without --delete-untagged.
//
//   - plan: Store.gc.Mark (Grace -1: nothing is young) lists exactly the
//     blobs, layer links and manifests `registry garbage-collect --dry-run`
//     prints, and marks as many;
//   - sweep: Store.gc.Sweep on one copy and the real garbage-collect on
//     another leave identical trees;
//   - after gc.Sweep the registry still serves every kept tag, crane validate
//     passes for each, and what was removed is gone.
func TestGCParity(t *testing.T) {
	trees := []struct {
		name string
		load func(t *testing.T) (string, Expect)
	}{
		{"testdata", func(t *testing.T) (string, Expect) { return loadTestdataTree(t, V3) }},
		{"fresh", func(t *testing.T) (string, Expect) {
			root, s := registryTree(t, V3)
			return root, s.Expect
		}},
	}
	for _, tree := range trees {
		for _, untagged := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/delete-untagged=%v", tree.name, untagged), func(t *testing.T) {
				registryBinary(t, V3)
				ours, exp := tree.load(t)
				theirs, _ := tree.load(t)

				rep := parseGCOutput(t, garbageCollect(t, V3, ours, true, untagged))
				st := openStore(t, ours)
				opts := gc.Options{DeleteUntagged: untagged, Grace: -1}
				plan, err := gc.Mark(context.Background(), st, opts)
				require.NoError(t, err)
				blobs, links, manifests := planStrings(plan)
				t.Logf("registry: %d marked, %d blobs, layer links %v, manifests %v (tags %v)",
					rep.Marked, len(rep.Blobs), rep.LayerLinks, rep.Manifests, rep.ManifestTags)
				assert.Equal(t, rep.Blobs, blobs, "blobs eligible for deletion")
				assert.Equal(t, rep.LayerLinks, links, "layer links eligible for deletion")
				assert.Equal(t, rep.Manifests, manifests, "manifests eligible for deletion")
				assert.Equal(t, rep.Marked, plan.Marked, "blobs (and manifests) marked")
				assert.Empty(t, rep.NoTags, "every repository has a tags/ directory")
				if untagged {
					assert.NotEmpty(t, manifests, "some manifests are untagged")
				} else {
					assert.Empty(t, manifests)
				}
				assert.NotEmpty(t, blobs)
				assert.NotEmpty(t, links)

				// Sweep: regstore on ours, the registry on theirs.
				_, err = gc.Sweep(context.Background(), st, plan, opts)
				require.NoError(t, err)
				garbageCollect(t, V3, theirs, false, untagged)
				compareTrees(t, theirs, ours)

				// What is kept still serves and validates.
				reg := startRegistry(t, V3, ours, RegistryOptions{ReadOnly: true})
				assert.Equal(t, exp.Catalog, catalog(t, reg.Host, 0), "catalog after GC")
				for _, repo := range exp.Catalog {
					names, status := listTags(t, reg.Host, repo)
					require.Equal(t, http.StatusOK, status)
					assert.Equal(t, sortedKeys(exp.Tags[repo]), names, "tags of %s after GC", repo)
				}
				for _, d := range blobs {
					assert.NoFileExists(t, blobDataPath(ours, d))
				}
				for repo, ds := range manifests {
					for _, d := range ds {
						assert.Equal(t, http.StatusNotFound, headManifest(t, reg.Host, repo, d).Status, "removed %s@%s", repo, d)
					}
				}
				t.Run("validate", func(t *testing.T) {
					requireBinary(t, "crane")
					for _, repo := range exp.Catalog {
						for _, tag := range sortedKeys(exp.Tags[repo]) {
							want := exp.Tags[repo][tag]
							t.Run(repo+":"+tag, func(t *testing.T) {
								t.Parallel()
								m := getManifest(t, reg.Host, repo, tag)
								if assert.Equal(t, http.StatusOK, m.Status) {
									assert.Equal(t, want, m.Digest)
								}
								craneValidate(t, reg.Ref(repo+":"+tag))
							})
						}
					}
				})
			})
		}
	}
}

// uploadBlob uploads data to repo (POST, then PUT ?digest= with the whole
// body) and returns its digest.
func uploadBlob(t *testing.T, host, repo string, data []byte) string {
	t.Helper()
	up := startUpload(t, host, repo)
	d := digestOf(data)
	u := up.Location
	if strings.Contains(u, "?") {
		u += "&digest=" + d
	} else {
		u += "?digest=" + d
	}
	res := httpDo(t, http.MethodPut, u, http.Header{"Content-Type": {"application/octet-stream"}}, data)
	require.Equal(t, http.StatusCreated, res.Status, "PUT %s: %s", u, res.Body)
	return d
}

// mountBlob links blob d of repo from into repo to (cross-repository mount).
func mountBlob(t *testing.T, host, to, from, d string) {
	t.Helper()
	u := "http://" + host + "/v2/" + to + "/blobs/uploads/?mount=" + d + "&from=" + from
	res := httpDo(t, http.MethodPost, u, nil, nil)
	require.Equal(t, http.StatusCreated, res.Status, "POST %s: %s", u, res.Body)
}

// putManifest PUTs a manifest by ref (tag or digest) and requires 201.
func putManifest(t *testing.T, host, repo, ref, mediaType string, body []byte) {
	t.Helper()
	u := "http://" + host + "/v2/" + repo + "/manifests/" + ref
	res := httpDo(t, http.MethodPut, u, http.Header{"Content-Type": {mediaType}}, body)
	require.Equal(t, http.StatusCreated, res.Status, "PUT %s: %s", u, res.Body)
}

// gcEdges is what populateGCEdges pushed.
type gcEdges struct {
	Late     string   // the layer of gc/late:v1, also mounted (unreferenced) into gc/early
	ByDigest string   // the manifest pushed by digest only into gc/bydigest (no tags/ dir)
	Subject  string   // gc/signed:v1
	Referrer string   // untagged artifact in gc/signed whose subject is gc/signed:v1
	RefBlobs []string // its config ({}) and layer
}

// populateGCEdges pushes, through the registry's API, the cases where
// regstore's garbage collection differs from the registry's:
//
//   - gc/early:v1 and gc/late:v1 are images; the layer of gc/late is also
//     mounted into gc/early, where no manifest uses it. gc/early is walked
//     first.
//   - gc/bydigest holds one manifest pushed by digest only, so the
//     repository has no tags/ directory; its source gc/src:x was deleted.
//   - gc/signed:v1 is an image with an untagged referrer (an artifact whose
//     subject is gc/signed:v1, pushed by digest, as a signer does).
func populateGCEdges(t *testing.T, reg *Registry) gcEdges {
	t.Helper()
	host := reg.Host
	dir := t.TempDir()
	layer := func(name string) string {
		return makeLayerTar(t, dir, name+".tar", map[string]string{name: name + "\n"})
	}
	var e gcEdges

	late := craneAppend(t, reg.Ref("gc/late:v1"), true, layer("late"))
	_, blobs, _ := manifestRefs(t, getManifest(t, host, "gc/late", late).Body)
	e.Late = blobs[1]
	craneAppend(t, reg.Ref("gc/early:v1"), true, layer("early"))
	mountBlob(t, host, "gc/early", "gc/late", e.Late)

	src := craneAppend(t, reg.Ref("gc/src:x"), true, layer("bydigest"))
	body := getManifest(t, host, "gc/src", src).Body
	_, srcBlobs, _ := manifestRefs(t, body)
	for _, b := range srcBlobs {
		mountBlob(t, host, "gc/bydigest", "gc/src", b)
	}
	putManifest(t, host, "gc/bydigest", src, MediaTypeOCIManifest, body)
	require.Equal(t, http.StatusAccepted, deleteManifest(t, host, "gc/src", src))
	e.ByDigest = src

	e.Subject = craneAppend(t, reg.Ref("gc/signed:v1"), true, layer("signed"))
	subject := getManifest(t, host, "gc/signed", e.Subject)
	cfg := uploadBlob(t, host, "gc/signed", []byte("{}"))
	require.Equal(t, v1.DescriptorEmptyJSON.Digest.String(), cfg)
	sig := []byte(`{"signature":"` + e.Subject + `"}`)
	sigD := uploadBlob(t, host, "gc/signed", sig)
	ref, err := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: v1.DescriptorEmptyJSON,
		Layers:  []v1.Descriptor{{MediaType: artifactLayerType, Digest: digest.Digest(sigD), Size: int64(len(sig))}},
		Subject: &v1.Descriptor{MediaType: subject.ContentType, Digest: digest.Digest(e.Subject), Size: int64(len(subject.Body))},
	})
	require.NoError(t, err)
	e.Referrer = digestOf(ref)
	putManifest(t, host, "gc/signed", e.Referrer, MediaTypeOCIManifest, ref)
	e.RefBlobs = []string{cfg, sigD}
	return e
}

// TestGCDifferences shows, on a v3-written tree built for it, every
// difference between Store.gc.Mark/gc.Sweep and the v3 registry's
// garbage-collect, and checks that each is one regstore means to make:
//
//   - -m, a repository without tags/ (gc/bydigest): the registry prints
//     "manifest tags path of repository ... does not exist", sweeps the
//     manifest's data but leaves its revision link dangling; regstore plans
//     the revision too (deliberate, in the gc.Mark doc);
//   - -m, an untagged referrer of a kept manifest (gc/signed): the registry
//     deletes it, its blobs and links; regstore keeps it (deliberate, in the
//     gc.Mark doc);
//   - with or without -m, an unreferenced _layers link in a repository
//     walked before the one whose manifest uses the blob (gc/early -> the
//     gc/late layer): the registry removes the link though the blob stays;
//     regstore removes only links whose blob goes (NOT listed in the gc.Mark
//     doc comment).
func TestGCDifferences(t *testing.T) {
	requireBinary(t, "crane")
	registryBinary(t, V3)
	dir := filepath.Join(t.TempDir(), "populate")
	reg := startRegistry(t, V3, dir, RegistryOptions{})
	e := populateGCEdges(t, reg)
	reg.Stop()
	archive, err := treearchive.FromDir(dir, "")
	require.NoError(t, err)
	fresh := func() string {
		root := filepath.Join(t.TempDir(), "root")
		require.NoError(t, treearchive.ToDir(archive, root))
		return root
	}

	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
			ours, theirs := fresh(), fresh()
			rep := parseGCOutput(t, garbageCollect(t, V3, ours, true, untagged))
			st := openStore(t, ours)
			opts := gc.Options{DeleteUntagged: untagged, Grace: -1}
			plan, err := gc.Mark(context.Background(), st, opts)
			require.NoError(t, err)
			blobs, links, manifests := planStrings(plan)

			// The registry's sets are regstore's plus/minus exactly these.
			wantLinks := cloneSets(links)
			wantLinks["gc/early"] = sorted(append(wantLinks["gc/early"], e.Late))
			wantBlobs, wantManifests, wantMarked := blobs, cloneSets(manifests), plan.Marked
			var wantNoTags []string
			if untagged {
				wantNoTags = []string{"gc/bydigest"}
				assert.Equal(t, []string{e.ByDigest}, manifests["gc/bydigest"], "regstore plans the revision")
				delete(wantManifests, "gc/bydigest")
				wantManifests["gc/signed"] = []string{e.Referrer}
				wantBlobs = sorted(append(slices.Clone(blobs), append([]string{e.Referrer}, e.RefBlobs...)...))
				wantLinks["gc/signed"] = sorted(slices.Clone(e.RefBlobs))
				wantMarked -= 3 // the referrer and its two blobs
				assert.NotContains(t, blobs, e.Referrer, "regstore keeps the referrer of a kept manifest")
				assert.Contains(t, blobs, e.ByDigest, "both sweep the untagged manifest's data")
			}
			assert.Equal(t, wantBlobs, rep.Blobs, "registry blobs")
			assert.Equal(t, wantLinks, rep.LayerLinks, "registry layer links")
			assert.Equal(t, wantManifests, rep.Manifests, "registry manifests")
			assert.Equal(t, wantMarked, rep.Marked, "registry marks")
			assert.Equal(t, wantNoTags, rep.NoTags)

			// Sweep both and list what differs on disk.
			_, err = gc.Sweep(context.Background(), st, plan, opts)
			require.NoError(t, err)
			garbageCollect(t, V3, theirs, false, untagged)
			a, b := snapshotTree(t, ours), snapshotTree(t, theirs)
			var onlyOurs, onlyTheirs []string
			for p := range a {
				if _, ok := b[p]; !ok {
					onlyOurs = append(onlyOurs, p)
				}
			}
			for p, v := range b {
				if w, ok := a[p]; !ok {
					onlyTheirs = append(onlyTheirs, p)
				} else {
					assert.Equal(t, v, w, p)
				}
			}
			sort.Strings(onlyOurs)
			sort.Strings(onlyTheirs)
			repos := "docker/registry/v2/repositories/"
			wantOurs := []string{repos + "gc/early/_layers/sha256/" + hexOf(e.Late) + "/link"}
			var wantTheirs []string
			if untagged {
				rev := repos + "gc/bydigest/_manifests/revisions/sha256/" + hexOf(e.ByDigest)
				wantTheirs = append(wantTheirs, rev, rev+"/link") // dangling
				rrev := repos + "gc/signed/_manifests/revisions/sha256/" + hexOf(e.Referrer)
				wantOurs = append(wantOurs, rrev, rrev+"/link")
				for _, d := range append([]string{e.Referrer}, e.RefBlobs...) {
					bd := "docker/registry/v2/blobs/sha256/" + hexOf(d)[:2] + "/" + hexOf(d)
					wantOurs = append(wantOurs, bd, bd+"/data")
				}
				for _, d := range e.RefBlobs {
					wantOurs = append(wantOurs, repos+"gc/signed/_layers/sha256/"+hexOf(d)+"/link")
				}
			}
			assert.Equal(t, sorted(wantOurs), onlyOurs, "only in regstore's tree")
			assert.Equal(t, sorted(wantTheirs), onlyTheirs, "only in the registry's tree")

			// What that means to a client.
			rOurs := startRegistry(t, V3, ours, RegistryOptions{ReadOnly: true})
			rTheirs := startRegistry(t, V3, theirs, RegistryOptions{ReadOnly: true})
			assert.Equal(t, http.StatusOK, headBlob(t, rOurs.Host, "gc/early", e.Late), "regstore keeps the link")
			assert.Equal(t, http.StatusNotFound, headBlob(t, rTheirs.Host, "gc/early", e.Late), "the registry drops it")
			for _, r := range []*Registry{rOurs, rTheirs} {
				assert.Equal(t, http.StatusOK, headBlob(t, r.Host, "gc/late", e.Late))
				craneValidate(t, r.Ref("gc/signed:v1"))
				craneValidate(t, r.Ref("gc/late:v1"))
				craneValidate(t, r.Ref("gc/early:v1"))
			}
			if untagged {
				assert.Equal(t, http.StatusOK, headManifest(t, rOurs.Host, "gc/signed", e.Referrer).Status, "referrer kept")
				assert.Equal(t, http.StatusNotFound, headManifest(t, rTheirs.Host, "gc/signed", e.Referrer).Status, "referrer deleted")
				for _, r := range []*Registry{rOurs, rTheirs} {
					assert.Equal(t, http.StatusNotFound, headManifest(t, r.Host, "gc/bydigest", e.ByDigest).Status)
				}
				// regstore sees the dangling link as no manifest at all.
				ds := collectSeq(t, storeRepo(t, openStore(t, theirs), "gc/bydigest").Manifests())
				assert.Empty(t, ds)
			}
		})
	}
}

func cloneSets(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func sorted(xs []string) []string {
	sort.Strings(xs)
	return xs
}

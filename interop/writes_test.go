package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// linkRE is the exact content of a link file: no newline, no whitespace.
var linkRE = regexp.MustCompile(`\Asha256:[0-9a-f]{64}\z`)

// startedAtRE is the content of _uploads/<id>/startedat: RFC 3339 UTC, whole seconds.
var startedAtRE = regexp.MustCompile(`\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z`)

// v2Dir is <root>/docker/registry/v2.
func v2Dir(root string) string { return filepath.Join(root, "docker", "registry", "v2") }

// repoPath joins a path inside repositories/<repo>/.
func repoPath(root, repo string, elem ...string) string {
	return filepath.Join(append([]string{v2Dir(root), "repositories", filepath.FromSlash(repo)}, elem...)...)
}

// blobDataPath is blobs/sha256/<hex2>/<hex>/data.
func blobDataPath(root, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(v2Dir(root), "blobs", "sha256", hex[:2], hex, "data")
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// readLink reads a link file and asserts its exact format; "" if absent.
func readLink(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if !assert.NoError(t, err, "link %s", p) {
		return ""
	}
	assert.Regexp(t, linkRE, string(b), "link file %s must be exactly sha256:<64 hex>, no newline", p)
	return string(b)
}

// listDir returns the names in a directory (nil if it does not exist).
func listDir(t testing.TB, p string) []string {
	t.Helper()
	ents, err := os.ReadDir(p)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// repoDirs walks repositories/ like the registry catalog does and returns
// the repositories that have a child named marker ("_manifests" for v3,
// "_layers" for 2.8).
func repoDirs(t testing.TB, root, marker string) []string {
	t.Helper()
	base := filepath.Join(v2Dir(root), "repositories")
	var out []string
	var walk func(dir, name string)
	walk = func(dir, name string) {
		for _, n := range listDir(t, dir) {
			if n == marker && name != "" {
				out = append(out, name)
			}
			if strings.HasPrefix(n, "_") {
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.IsDir() {
				child := n
				if name != "" {
					child = name + "/" + n
				}
				walk(filepath.Join(dir, n), child)
			}
		}
	}
	walk(base, "")
	return out
}

// checkTree asserts the on-disk tree a registry wrote for populateRegistry,
// without any help from the library.
func checkTree(t *testing.T, root string, s *scenario) {
	e := s.Expect
	v2 := v2Dir(root)

	t.Run("every file is a known kind", func(t *testing.T) {
		n := 0
		require.NoError(t, filepath.WalkDir(v2, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			rel, _ := filepath.Rel(v2, p)
			rel = filepath.ToSlash(rel)
			switch base := d.Name(); {
			case base == "link":
				readLink(t, p)
			case base == "data", base == "startedat":
			case strings.Contains(rel, "/_uploads/") && strings.Contains(rel, "/hashstates/sha256/"):
			default:
				t.Errorf("unexpected file %s", rel)
			}
			return nil
		}))
		assert.Greater(t, n, 50)
	})

	t.Run("repositories", func(t *testing.T) {
		marker := "_manifests"
		if s.Version == V28 {
			marker = "_layers" // 2.8 catalog marker (LAYOUT §5.1)
		}
		assert.ElementsMatch(t, e.Catalog, repoDirs(t, root, marker))
		assert.ElementsMatch(t, e.Catalog, repoDirs(t, root, "_manifests"))
	})

	t.Run("manifests", func(t *testing.T) {
		for repo, ds := range e.Manifests {
			var want []string
			for _, d := range ds {
				want = append(want, hexOf(d))
				assert.Equal(t, d, readLink(t, repoPath(root, repo, "_manifests", "revisions", "sha256", hexOf(d), "link")))
				data, err := os.ReadFile(blobDataPath(root, d))
				if assert.NoError(t, err) {
					assert.Equal(t, d, digestOf(data), "manifest data is content-addressed")
					assert.Equal(t, s.Bodies[d], data, "manifest bytes stored verbatim")
				}
				assert.NoFileExists(t, repoPath(root, repo, "_layers", "sha256", hexOf(d), "link"),
					"manifests are not linked in _layers")
			}
			for _, d := range e.DeletedManifests[repo] {
				want = append(want, hexOf(d))
			}
			assert.ElementsMatch(t, want, listDir(t, repoPath(root, repo, "_manifests", "revisions", "sha256")), repo)
		}
	})

	t.Run("blobs and layer links", func(t *testing.T) {
		for repo, ds := range e.Blobs {
			var want []string
			for _, d := range ds {
				want = append(want, hexOf(d))
				assert.Equal(t, d, readLink(t, repoPath(root, repo, "_layers", "sha256", hexOf(d), "link")))
				data, err := os.ReadFile(blobDataPath(root, d))
				if assert.NoError(t, err) {
					assert.Equal(t, d, digestOf(data))
				}
			}
			assert.ElementsMatch(t, want, listDir(t, repoPath(root, repo, "_layers", "sha256")), repo)
		}
	})

	t.Run("tags", func(t *testing.T) {
		for repo, tags := range e.Tags {
			assert.ElementsMatch(t, sortedKeys(tags), listDir(t, repoPath(root, repo, "_manifests", "tags")), repo)
			for tag, d := range tags {
				tagDir := repoPath(root, repo, "_manifests", "tags", tag)
				assert.Equal(t, d, readLink(t, filepath.Join(tagDir, "current", "link")), "%s:%s", repo, tag)
				assert.Equal(t, d, readLink(t, filepath.Join(tagDir, "index", "sha256", hexOf(d), "link")), "%s:%s index", repo, tag)
			}
		}
		// The retagged tag: exactly "sha256:" + 64 hex, no newline.
		b, err := os.ReadFile(repoPath(root, repoApp, "_manifests", "tags", "stable", "current", "link"))
		require.NoError(t, err)
		assert.Len(t, b, 71)
		assert.Equal(t, s.D["app-v1"], string(b))
		// The moved tag keeps both index entries.
		assert.ElementsMatch(t, []string{hexOf(s.D["app-old"]), hexOf(s.D["app-v2"])},
			listDir(t, repoPath(root, repoApp, "_manifests", "tags", "latest", "index", "sha256")))
		assert.Equal(t, s.D["app-v2"], e.Tags[repoApp]["latest"])
		// app-old is untagged but still a revision.
		assert.Contains(t, e.Manifests[repoApp], s.D["app-old"])
		// Index children are untagged revisions of multi/arch.
		for _, k := range []string{"src-amd64", "src-arm64", "src-amd64-docker", "src-arm64-docker"} {
			assert.Contains(t, e.Manifests[repoArch], s.D[k])
			assert.NotContains(t, e.Tags[repoArch], s.D[k])
		}
		edge := repoPath(root, repoAlpine, "_manifests", "tags", "edge")
		if s.Version == V3 {
			assert.NoDirExists(t, edge, "v3 deletes the whole tag directory")
		} else {
			assert.Equal(t, s.D["alpine"], readLink(t, filepath.Join(edge, "current", "link")), "2.8 cannot delete tags")
		}
	})

	t.Run("deleted manifest", func(t *testing.T) {
		d := s.D["tmp"]
		rev := repoPath(root, repoApp, "_manifests", "revisions", "sha256", hexOf(d))
		assert.DirExists(t, rev)
		assert.Empty(t, listDir(t, rev), "only the link file is removed; the revision dir stays empty")
		assert.NoDirExists(t, repoPath(root, repoApp, "_manifests", "tags", "tmp"), "tags pointing at it are removed")
		assert.FileExists(t, blobDataPath(root, d), "manifest data stays until GC")
		_, refs, _ := manifestRefs(t, s.Bodies[d])
		for _, b := range refs {
			assert.FileExists(t, repoPath(root, repoApp, "_layers", "sha256", hexOf(b), "link"), "its blobs stay linked")
		}
	})

	t.Run("abandoned upload", func(t *testing.T) {
		assert.Equal(t, []string{s.Upload.UUID}, listDir(t, repoPath(root, s.UploadRepo, "_uploads")))
		up := repoPath(root, s.UploadRepo, "_uploads", s.Upload.UUID)
		b, err := os.ReadFile(filepath.Join(up, "startedat"))
		if assert.NoError(t, err) {
			assert.Regexp(t, startedAtRE, string(b))
		}
		b, err = os.ReadFile(filepath.Join(up, "data"))
		if assert.NoError(t, err) {
			assert.Equal(t, s.UploadData, b)
		}
		hs := filepath.Join(up, "hashstates", "sha256", strconv.Itoa(len(s.UploadData)))
		b, err = os.ReadFile(hs)
		if assert.NoError(t, err, "hash state named by offset") {
			assert.True(t, bytes.HasPrefix(b, []byte("sha\x03")), "crypto/sha256 MarshalBinary state")
		}
		// Completed uploads leave an empty _uploads dir behind.
		for _, repo := range e.Catalog {
			if repo != s.UploadRepo {
				assert.Empty(t, listDir(t, repoPath(root, repo, "_uploads")), repo)
			}
		}
	})
}

// TestRegistryWritesTree (direction 2: the registry writes, we read) pushes
// the standard set with crane into an empty registry, reads it back with
// crane and skopeo, stops the registry and checks the tree on disk against
// what the API reported. It then checks the GC helper and Restart.
func TestRegistryWritesTree(t *testing.T) {
	requireBinary(t, "crane")
	for _, version := range registryVersions {
		t.Run(version, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			reg := startRegistry(t, version, root, RegistryOptions{})
			s := populateRegistry(t, reg)

			t.Run("clients read back", func(t *testing.T) {
				for repo, tags := range s.Expect.Tags {
					for tag := range tags {
						craneValidate(t, reg.Ref(repo+":"+tag))
					}
				}
				assert.Equal(t, s.D["app-v1"], craneDigest(t, reg.Ref(repoApp+":stable")))
				pulled := filepath.Join(t.TempDir(), "pulled")
				cranePullOCI(t, reg.Ref(repoApp+":v1"), pulled)
				assert.FileExists(t, filepath.Join(pulled, "index.json"))
				t.Run("skopeo", func(t *testing.T) {
					requireBinary(t, "skopeo")
					oci := filepath.Join(t.TempDir(), "oci")
					skopeoCopyOCI(t, reg.Ref(repoAlpine+":latest"), oci, "latest")
					skopeoCopyOCI(t, reg.Ref(repoWeb+":1.0"), oci, "web")
					d := filepath.Join(t.TempDir(), "dir")
					skopeoCopyDir(t, reg.Ref(repoWeb+":1.0"), d)
					b, err := os.ReadFile(filepath.Join(d, "manifest.json"))
					require.NoError(t, err)
					assert.Equal(t, s.D["web"], digestOf(b), "skopeo dir: keeps the manifest bytes")
					t.Run("umoci", func(t *testing.T) {
						requireBinary(t, "umoci")
						assert.ElementsMatch(t, []string{"latest", "web"}, umociList(t, oci))
					})
				})
			})

			t.Run("digests match committed testdata", func(t *testing.T) {
				// Layers are built with fixed mtimes and crane's empty base
				// has a zero "created", so every digest is reproducible.
				_, exp := loadTestdataTree(t, version)
				assert.ElementsMatch(t, exp.Catalog, s.Expect.Catalog)
				assert.Equal(t, exp.Tags, s.Expect.Tags)
				assert.Equal(t, exp.Manifests, s.Expect.Manifests)
				assert.Equal(t, exp.Blobs, s.Expect.Blobs)
				assert.Equal(t, exp.MediaTypes, s.Expect.MediaTypes)
				assert.Equal(t, exp.DeletedManifests, s.Expect.DeletedManifests)
			})

			reg.Stop()
			assert.False(t, reg.Running())
			checkTree(t, root, s)

			t.Run("garbage-collect dry run", func(t *testing.T) {
				out := garbageCollect(t, version, root, true, false)
				assert.Contains(t, out, "blobs marked")
				for _, repo := range s.Expect.Catalog {
					assert.Contains(t, out, repo+": marking manifest ")
				}
				// Dry run: the tree is unchanged, which the restart below confirms.
			})

			reg.Restart(t)
			verifyExpect(t, reg.Host, version, s.Expect)
		})
	}
}

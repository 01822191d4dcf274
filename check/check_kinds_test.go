package check_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/internal/treearchive"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kitBackends are the backends every kit test runs on. Trees are built in
// memory and then loaded into the backend: as is for MemFS, copied with
// regstoretest.WriteTree (no fsync per file, which would make the tests
// slow) into a fresh directory for Dir.
var kitBackends = []struct {
	name string
	load func(t testing.TB, m *regstore.MemFS) regstore.WriteFS
}{
	{"MemFS", func(_ testing.TB, m *regstore.MemFS) regstore.WriteFS { return m }},
	{"Dir", func(t testing.TB, m *regstore.MemFS) regstore.WriteFS {
		root := t.TempDir()
		require.NoError(t, regstoretest.WriteTree(m, root), "WriteTree")
		d, err := regstore.OpenDir(root)
		require.NoError(t, err, "OpenDir")
		t.Cleanup(func() { d.Close() })
		return d
	}},
}

// kitNow is the clock of every check in these tests: upload ages are
// measured from it.
var kitNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// kit is a clean tree built with regstoretest:
//
//	app       img (OCI; layers l1, l2) tagged latest and v1
//	          docker (Docker schema2; layers l1, l3) tagged docker
//	          sig, an untagged referrer of img (empty config, one layer)
//	multi     child1 (amd64) and child2 (arm64), untagged, listed by
//	          index (OCI index) tagged idx and list (Docker list) tagged list
//	app/web   web (OCI; layer l1) tagged 1.0
type kit struct {
	s                                            *regstore.Store
	img, docker, sig, child1, child2, index, lst *regstore.Manifest
	web                                          *regstore.Manifest
	l1, l2, l3                                   digest.Digest
	// made is the digest of what a broken state created, if anything.
	made digest.Digest
}

func kitRepo(t testing.TB, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

// buildKit builds the kit tree in memory and loads it with load.
func buildKit(t testing.TB, load func(testing.TB, *regstore.MemFS) regstore.WriteFS) *kit {
	t.Helper()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	k := &kit{s: s}
	l1, l2, l3 := regstoretest.RandomLayer(1, 64), regstoretest.RandomLayer(2, 64), regstoretest.RandomLayer(3, 64)
	k.l1, k.l2, k.l3 = digest.FromBytes(l1.Compressed), digest.FromBytes(l2.Compressed), digest.FromBytes(l3.Compressed)

	app := kitRepo(t, s, "app")
	k.img = regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{l1, l2}}, "latest", "v1")
	k.docker = regstoretest.Push(t, app, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{l1, l3}}, "docker")
	k.sig = regstoretest.Push(t, app, regstoretest.Image{ArtifactType: "application/vnd.example.sig",
		Config: []byte("{}"), ConfigMediaType: v1.MediaTypeEmptyJSON,
		Layers: []regstoretest.Layer{regstoretest.RandomLayer(4, 16)}, Subject: ptr(k.img.Descriptor())})

	multi := kitRepo(t, s, "multi")
	k.child1 = regstoretest.Push(t, multi, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(5, 64)}})
	k.child2 = regstoretest.Push(t, multi, regstoretest.Image{Architecture: "arm64",
		Layers: []regstoretest.Layer{regstoretest.RandomLayer(6, 64)}})
	k.index = regstoretest.PushIndex(t, multi, "", []*regstore.Manifest{k.child1, k.child2}, "idx")
	k.lst = regstoretest.PushIndex(t, multi, regstore.MediaTypeDockerManifestList, []*regstore.Manifest{k.child1, k.child2}, "list")

	k.web = regstoretest.Push(t, kitRepo(t, s, "app/web"), regstoretest.Image{Layers: []regstoretest.Layer{l1}}, "1.0")

	k.s, err = regstore.Open(load(t, m))
	require.NoError(t, err)
	return k
}

// runCheck collects every problem Check yields.
func runCheck(t testing.TB, s *regstore.Store, linksOnly bool) []check.Problem {
	t.Helper()
	var out []check.Problem
	for p, err := range check.Problems(context.Background(), s, check.Options{LinksOnly: linksOnly, Now: func() time.Time { return kitNow }}) {
		require.NoError(t, err, "Check")
		out = append(out, p)
	}
	return out
}

func countKinds(ps []check.Problem) map[check.ProblemKind]int {
	out := map[check.ProblemKind]int{}
	for _, p := range ps {
		out[p.Kind]++
	}
	return out
}

// problemPaths is "kind path" for each problem, sorted.
func problemPaths(ps []check.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Kind)+" "+p.Path)
	}
	slices.Sort(out)
	return out
}

func kp(kind check.ProblemKind, path string) string { return string(kind) + " " + path }

// brokenCase is one broken state made with the kit, and what Check must
// report on it: exactly these problems (kind and path), no more.
type brokenCase struct {
	name  string
	brk   func(k *kit) error
	wantf func(k *kit) []string
}

const (
	kitUploadID   = "019a2f3e-7b1c-7d2e-8f3a-4b5c6d7e8f90"
	kitTempSuffix = ".0b9d8f4e-5c1a-4d7e-9a63-2f1e8c7b6a50.tmp"
)

var brokenCases = []brokenCase{
	{"dangling layer link",
		func(k *kit) error { return regstoretest.DanglingLink(k.s, "app", string(k.l2)) },
		func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.BlobMissing, l.LayerLink("app", k.l2)), kp(check.ReferenceMissing, l.BlobData(k.img.Digest()))}
		}},
	{"dangling manifest (revision and tag)",
		func(k *kit) error { return regstoretest.DanglingLink(k.s, "app", "docker") },
		func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.BlobMissing, l.RevisionLink("app", k.docker.Digest())), kp(check.BlobMissing, l.TagCurrent("app", "docker"))}
		}},
	{"empty tag link",
		func(k *kit) error { return regstoretest.EmptyLink(k.s, "app", "docker") },
		func(k *kit) []string {
			return []string{kp(check.LinkEmpty, k.s.Layout().TagCurrent("app", "docker"))}
		}},
	{"empty revision link of an index child",
		func(k *kit) error { return regstoretest.EmptyLink(k.s, "multi", string(k.child1.Digest())) },
		func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.LinkEmpty, l.RevisionLink("multi", k.child1.Digest())),
				kp(check.ReferenceUnlinked, l.BlobData(k.index.Digest())), kp(check.ReferenceUnlinked, l.BlobData(k.lst.Digest()))}
		}},
	{"newline link",
		func(k *kit) error { return regstoretest.NewlineLink(k.s, "app", "v1") },
		func(k *kit) []string {
			return []string{kp(check.LinkTrailingBytes, k.s.Layout().TagCurrent("app", "v1"))}
		}},
	{"unknown algorithm link",
		func(k *kit) error { return regstoretest.UnknownAlgorithmLink(k.s, "app", "v1") },
		func(k *kit) []string {
			return []string{kp(check.LinkUnknownAlg, k.s.Layout().TagCurrent("app", "v1"))}
		}},
	{"garbage tag link",
		func(k *kit) error { return regstoretest.GarbageLink(k.s, "app", "v1") },
		func(k *kit) []string {
			return []string{kp(check.LinkUnparsable, k.s.Layout().TagCurrent("app", "v1"))}
		}},
	{"garbage layer link",
		func(k *kit) error { return regstoretest.GarbageLink(k.s, "app", string(k.l2)) },
		func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.LinkUnparsable, l.LayerLink("app", k.l2)), kp(check.ReferenceUnlinked, l.BlobData(k.img.Digest()))}
		}},
	{"corrupt layer",
		func(k *kit) error { return regstoretest.CorruptBlob(k.s, k.l2) },
		func(k *kit) []string { return []string{kp(check.BlobCorrupt, k.s.Layout().BlobData(k.l2))} }},
	{"corrupt manifest data",
		func(k *kit) error { return regstoretest.CorruptBlob(k.s, k.docker.Digest()) },
		func(k *kit) []string {
			return []string{kp(check.BlobCorrupt, k.s.Layout().BlobData(k.docker.Digest()))}
		}},
	{"stale upload",
		func(k *kit) error {
			return regstoretest.HalfWrittenUpload(k.s, "app/web", kitUploadID, kitNow.Add(-30*24*time.Hour))
		},
		func(k *kit) []string {
			return []string{kp(check.UploadStale, k.s.Layout().Upload("app/web", kitUploadID))}
		}},
	{"upload without startedat",
		func(k *kit) error { return regstoretest.HalfWrittenUpload(k.s, "app/web", kitUploadID, time.Time{}) },
		func(k *kit) []string {
			return []string{kp(check.UploadMalformed, k.s.Layout().Upload("app/web", kitUploadID))}
		}},
	{"recent upload (in progress, not a problem)",
		func(k *kit) error {
			return regstoretest.HalfWrittenUpload(k.s, "app/web", kitUploadID, kitNow.Add(-time.Hour))
		},
		func(*kit) []string { return nil }},
	{"tag without index entry",
		func(k *kit) error { return regstoretest.TagWithoutIndexEntry(k.s, "app", "latest") },
		func(k *kit) []string {
			return []string{kp(check.TagNotInIndex, k.s.Layout().TagCurrent("app", "latest"))}
		}},
	{"tag without manifest",
		func(k *kit) error { return regstoretest.TagWithoutManifest(k.s, "app", "docker") },
		func(k *kit) []string {
			return []string{kp(check.TagUnresolvable, k.s.Layout().TagCurrent("app", "docker"))}
		}},
	{"orphan blob",
		func(k *kit) (err error) {
			k.made, err = regstoretest.OrphanBlob(k.s, []byte("nobody links me"))
			return err
		},
		func(k *kit) []string { return []string{kp(check.BlobOrphan, k.s.Layout().BlobData(k.made))} }},
	{"unlinked layer",
		func(k *kit) error { return regstoretest.UnlinkReference(k.s, "app", k.img.Digest(), k.l2) },
		func(k *kit) []string {
			return []string{kp(check.ReferenceUnlinked, k.s.Layout().BlobData(k.img.Digest()))}
		}},
	{"unlinked index child",
		func(k *kit) error {
			return regstoretest.UnlinkReference(k.s, "multi", k.index.Digest(), k.child2.Digest())
		},
		func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.ReferenceUnlinked, l.BlobData(k.index.Digest())), kp(check.ReferenceUnlinked, l.BlobData(k.lst.Digest()))}
		}},
	{"oversize manifest",
		func(k *kit) (err error) { k.made, err = regstoretest.OversizeManifest(k.s, "app"); return err },
		func(k *kit) []string { return []string{kp(check.ManifestTooLarge, k.s.Layout().BlobData(k.made))} }},
	{"invalid manifest",
		func(k *kit) (err error) {
			k.made, err = regstoretest.InvalidManifest(k.s, "app", []byte(`{"not":"a manifest"}`))
			return err
		},
		func(k *kit) []string { return []string{kp(check.ManifestInvalid, k.s.Layout().BlobData(k.made))} }},
	{"temp file",
		func(k *kit) error { return regstoretest.TempFile(k.s, "app", "latest") },
		func(k *kit) []string {
			return []string{kp(check.TempFileLeft, k.s.Layout().TagCurrent("app", "latest")+kitTempSuffix)}
		}},
	{"interrupted garbage collection",
		func(k *kit) error {
			d, err := regstoretest.OrphanBlob(k.s, []byte("swept"))
			if err != nil {
				return err
			}
			return regstoretest.InterruptedGC(k.s, d)
		},
		func(k *kit) []string {
			d := digest.FromString("swept")
			return []string{kp(check.GCInterrupted, k.s.Layout().Root()+"/_gc/aside"), kp(check.GCInterrupted, k.s.Layout().BlobData(d)+".gc")}
		}},
	{"repository directory with a name regstore cannot name",
		func(k *kit) error { return copyRepoLinks(k.s, "app/web", "tagt/App") },
		func(k *kit) []string {
			return []string{kp(check.NameInvalid, k.s.Layout().Repository("tagt/App"))}
		}},
	{"revision link naming another digest than its path",
		func(k *kit) error {
			return writeLink(k.s, k.s.Layout().RevisionLink("app", k.sig.Digest()), k.docker.Digest())
		},
		func(k *kit) []string {
			return []string{kp(check.LinkMismatch, k.s.Layout().RevisionLink("app", k.sig.Digest()))}
		}},
	{"link path that is a directory",
		func(k *kit) error {
			w, err := k.s.Writer()
			if err != nil {
				return err
			}
			p := k.s.Layout().TagCurrent("app", "docker")
			if err := w.Remove(p); err != nil {
				return err
			}
			return regstore.WriteFile(w, p+"/x", strings.NewReader("x"))
		},
		func(k *kit) []string {
			return []string{kp(check.LinkIsDirectory, k.s.Layout().TagCurrent("app", "docker"))}
		}},
	{"tag directory without a current link",
		func(k *kit) error {
			w, err := k.s.Writer()
			if err != nil {
				return err
			}
			return w.Remove(k.s.Layout().TagCurrent("app", "docker"))
		},
		func(k *kit) []string {
			return []string{kp(check.TagWithoutCurrent, k.s.Layout().Tag("app", "docker"))}
		}},
	{"tag directory whose name is not a valid tag",
		func(k *kit) error {
			l := k.s.Layout()
			if err := writeLink(k.s, l.TagIndexLink("app", ".bad", k.img.Digest()), k.img.Digest()); err != nil {
				return err
			}
			return writeLink(k.s, l.TagCurrent("app", ".bad"), k.img.Digest())
		},
		func(k *kit) []string {
			return []string{kp(check.TagInvalid, k.s.Layout().Tag("app", ".bad"))}
		}},
	{"unknown file",
		func(k *kit) error { return regstoretest.UnknownFile(k.s, "repositories/app/notes.txt", []byte("hi")) },
		func(k *kit) []string {
			return []string{kp(check.UnknownFileInTree, k.s.Layout().Repository("app")+"/notes.txt")}
		}},
}

// TestCheckFindsEveryKind breaks a clean kit tree in one way per case and
// checks that Check reports exactly the expected problems, with a full
// re-hash and in links-only mode (which reports the same, less
// blob-corrupt).
func TestCheckFindsEveryKind(t *testing.T) {
	for _, bk := range kitBackends {
		for _, tc := range brokenCases {
			t.Run(bk.name+"/"+tc.name, func(t *testing.T) {
				k := buildKit(t, bk.load)
				require.Empty(t, runCheck(t, k.s, false), "Check on the clean kit tree")
				require.NoError(t, tc.brk(k), "breaking the tree")
				want := tc.wantf(k)
				got := runCheck(t, k.s, false)
				slices.Sort(want)
				assert.Equal(t, want, problemPaths(got), "Check (full)")
				for _, p := range got {
					assert.NotEmpty(t, p.Message, "%s has a sentence", p.Kind)
				}
				var wantLinks []string
				for _, w := range want {
					if !strings.HasPrefix(w, kp(check.BlobCorrupt, "")) {
						wantLinks = append(wantLinks, w)
					}
				}
				assert.Equal(t, wantLinks, problemPaths(runCheck(t, k.s, true)), "Check (links only)")
			})
		}
	}
}

// TestBrokenCasesCoverEveryKind reads the ProblemKind constants from
// check.go, so that a kind added there fails here until a broken state
// shows that Check finds it.
func TestBrokenCasesCoverEveryKind(t *testing.T) {
	declared := problemKindsDeclared(t)
	require.NotEmpty(t, declared)
	covered := map[check.ProblemKind]bool{}
	for _, bk := range kitBackends[:1] {
		for _, tc := range brokenCases {
			k := buildKit(t, bk.load)
			require.NoError(t, tc.brk(k), tc.name)
			for kind := range countKinds(runCheck(t, k.s, false)) {
				covered[kind] = true
			}
		}
	}
	// The kinds only a directory tree can have: its own cases.
	for _, tc := range dirBrokenCases {
		k := buildKit(t, kitBackends[1].load)
		require.NoError(t, tc.brk(k), tc.name)
		for kind := range countKinds(runCheck(t, k.s, false)) {
			covered[kind] = true
		}
	}
	for _, kind := range declared {
		assert.True(t, covered[kind], "no broken state makes Check report %q", kind)
	}
	assert.ElementsMatch(t, declared, slices.Collect(maps.Keys(covered)), "kinds reported are the kinds declared")
}

// problemKindsDeclared parses check.go for the constants of type
// ProblemKind.
func problemKindsDeclared(t *testing.T) []check.ProblemKind {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "check.go", nil, 0)
	require.NoError(t, err)
	var out []check.ProblemKind
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ProblemKind" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok, "ProblemKind constants are string literals")
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out = append(out, check.ProblemKind(s))
			}
		}
	}
	return out
}

// TestCheckCleanKitTrees: nothing is reported on trees made only through
// the regstore API: the kit tree (images of both schemas, an index, a
// manifest list, a referrer, a nested repository sharing a layer) and a
// generated tree with shared layers and untagged manifests.
func TestCheckCleanKitTrees(t *testing.T) {
	for _, bk := range kitBackends {
		t.Run(bk.name+"/kit", func(t *testing.T) {
			k := buildKit(t, bk.load)
			assert.Empty(t, problemPaths(runCheck(t, k.s, false)))
		})
		t.Run(bk.name+"/generated", func(t *testing.T) {
			m := regstore.NewMemFS()
			s, err := regstore.Open(m)
			require.NoError(t, err)
			_, err = regstoretest.Generate(s, regstoretest.GenerateOptions{Repositories: 4, TagsPerRepo: 2, ManifestsPerRepo: 3,
				LayersPerManifest: 2, SharedFraction: 0.5, UntaggedFraction: 0.34, BlobSize: 100, Seed: 6})
			require.NoError(t, err)
			s, err = regstore.Open(bk.load(t, m))
			require.NoError(t, err)
			assert.Empty(t, problemPaths(runCheck(t, s, false)))
		})
	}
}

// TestCheckRegistryWrittenTrees runs Check on the trees the real registries
// (v3.1.2 and 2.8.2) wrote, in testdata/. They are healthy, and Check
// reports only what is really there:
//
//   - team/app:tmp was pushed and then deleted by digest. The registry
//     removed its revision link file and left the revision directory empty,
//     which Check does not report (it walks files; the registry itself
//     treats a directory without a link as absent). It also left the
//     manifest's data, which nothing links or references any more: that is
//     a blob-orphan, exactly the one garbage collection would remove.
//   - team/app/web holds an upload session that was started and never
//     finished, with a startedat. It is not reported while it is younger
//     than the stale age (it may still be in progress), and is reported as
//     upload-stale after that, when the registry's own purge would remove
//     it.
//
// The empty _uploads directories the registry leaves are not reported
// either.
func TestCheckRegistryWrittenTrees(t *testing.T) {
	deleted := digest.Digest("sha256:081848a69e0d1ce39d3806545fad6292269baf139cd0b7f68ed53692ffdc1643")
	for _, version := range []string{"v3", "v2.8"} {
		archive := filepath.Join("..", "testdata", "registry-"+version+".txtar")
		loads := []struct {
			name string
			load func(t *testing.T) fs.FS
		}{
			{"MemFS", func(t *testing.T) fs.FS {
				m, err := treearchive.LoadMemFS(archive)
				require.NoError(t, err)
				return m
			}},
			{"Dir", func(t *testing.T) fs.FS {
				root := t.TempDir()
				require.NoError(t, treearchive.LoadDir(archive, root))
				d, err := regstore.OpenDir(root)
				require.NoError(t, err)
				t.Cleanup(func() { d.Close() })
				return d
			}},
		}
		for _, ld := range loads {
			t.Run(version+"/"+ld.name, func(t *testing.T) {
				s, err := regstore.Open(ld.load(t))
				require.NoError(t, err)
				l := s.Layout()

				// What is really there.
				entries, err := fs.ReadDir(s.FS(), l.RevisionDir("team/app", deleted))
				require.NoError(t, err, "the deleted manifest's revision directory is still there")
				assert.Empty(t, entries, "and empty")
				web := kitRepo(t, s, "team/app/web")
				ups := collect(t, web.Uploads())
				require.Len(t, ups, 1, "one unfinished upload")
				require.False(t, ups[0].StartedAt.IsZero(), "with a startedat")

				probe := func(now time.Time) []string {
					var got []check.Problem
					for p, err := range check.Problems(context.Background(), s, check.Options{Now: func() time.Time { return now }}) {
						require.NoError(t, err)
						got = append(got, p)
					}
					return problemPaths(got)
				}
				orphan := kp(check.BlobOrphan, l.BlobData(deleted))
				assert.Equal(t, []string{orphan}, probe(ups[0].StartedAt.Add(time.Hour)),
					"Check while the upload is young: only the deleted manifest's data")
				assert.Equal(t, []string{orphan, kp(check.UploadStale, ups[0].Path())}, probe(ups[0].StartedAt.Add(8*24*time.Hour)),
					"Check once the upload is older than 168h")
			})
		}
	}
}

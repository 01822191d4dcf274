package regstore_test

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// delTree is the fixture of the repository delete and move tests:
//
//	a          image tagged v1
//	a/b        two images (latest moved from the first to the second, so
//	           latest's history has two entries), an index of them tagged
//	           multi, a loose blob also linked under a sha512 alias, and an
//	           upload session
//	a/b/c      an image sharing a/b's first layer, tagged v1 and latest
//	a/bb       an image (a sibling whose name starts like a/b's)
//	x/y        an image (a repository with no repository above it)
type delTree struct {
	s       *regstore.Store
	w       regstore.WriteFS
	alias   digest.Digest // sha512 alias link in a/b
	abOnly  []digest.Digest
	abLayer digest.Digest // a/b's first layer, shared with a/b/c
}

var delRepos = []string{"a", "a/b", "a/b/c", "a/bb", "x/y"}

func buildDelTree(t *testing.T, w regstore.WriteFS) delTree {
	t.Helper()
	s, err := regstore.Open(w)
	require.NoError(t, err)
	g := delTree{s: s, w: w}
	layer := func(seed uint64) regstoretest.Layer { return regstoretest.RandomLayer(seed, 64) }
	img := func(ls ...regstoretest.Layer) regstoretest.Image { return regstoretest.Image{Layers: ls} }

	regstoretest.Push(t, mustRepo(t, s, "a"), img(layer(1)), "v1")
	ab := mustRepo(t, s, "a/b")
	shared := layer(2)
	m1 := regstoretest.Push(t, ab, img(shared), "latest", "v1")
	m2 := regstoretest.Push(t, ab, regstoretest.Image{Layers: []regstoretest.Layer{layer(3)}, Architecture: "arm64"}, "latest")
	idx := regstoretest.PushIndex(t, ab, "", []*regstore.Manifest{m1, m2}, "multi")
	loose := []byte("loose blob of a/b")
	b, err := ab.PutBlob(bytes.NewReader(loose), digest.NewDigestFromBytes(digest.SHA512, sha512Sum(loose)), int64(len(loose)))
	require.NoError(t, err)
	g.alias = digest.NewDigestFromBytes(digest.SHA512, sha512Sum(loose))
	g.abLayer = layerOf(t, m1)
	g.abOnly = []digest.Digest{m2.Digest(), layerOf(t, m2), idx.Digest(), b.Digest()}
	putUpload(t, s, testUpload{"a/b", "5f2bd6a0-2f0b-4c41-9d7d-2a7c0c1f5e11", rfc3339(time.Now()), time.Now()})

	regstoretest.Push(t, mustRepo(t, s, "a/b/c"), img(shared, layer(4)), "v1", "latest")
	regstoretest.Push(t, mustRepo(t, s, "a/bb"), img(layer(5)), "v1")
	regstoretest.Push(t, mustRepo(t, s, "x/y"), img(layer(6)), "v1")
	return g
}

func sha512Sum(b []byte) []byte { s := sha512.Sum512(b); return s[:] }

// repoState is everything a client can read from a repository: tags with
// what they resolve to and their history, manifests with their bytes, and
// linked blobs with their canonical digest and size, all verified.
type repoState struct {
	Tags      map[string]digest.Digest
	History   map[string][]digest.Digest
	Manifests map[digest.Digest]string
	Layers    map[digest.Digest]string // link digest → canonical digest and size
}

func readRepoState(t *testing.T, s *regstore.Store, name string) repoState {
	t.Helper()
	r := mustRepo(t, s, name)
	st := repoState{Tags: map[string]digest.Digest{}, History: map[string][]digest.Digest{}, Manifests: map[digest.Digest]string{}, Layers: map[digest.Digest]string{}}
	for tag, err := range r.Tags() {
		require.NoError(t, err, "%s.Tags()", name)
		m, err := tag.Resolve()
		require.NoError(t, err, "Resolve(%s)", tag)
		st.Tags[tag.Name()] = m.Digest()
		for d, err := range tag.History() {
			require.NoError(t, err, "History(%s)", tag)
			st.History[tag.Name()] = append(st.History[tag.Name()], d)
		}
	}
	for d, err := range r.Manifests() {
		require.NoError(t, err, "%s.Manifests()", name)
		m, err := r.Manifest(d)
		require.NoError(t, err, "%s.Manifest(%s)", name, d)
		st.Manifests[d] = string(m.Bytes())
		for ref := range m.References() {
			if m.IsIndex() {
				_, err = r.Manifest(ref.Digest)
			} else {
				_, err = r.Blob(ref.Digest)
			}
			assert.NoError(t, err, "%s: reference %s of %s", name, ref.Digest, d)
		}
	}
	for d, err := range r.Layers() {
		require.NoError(t, err, "%s.Layers()", name)
		b, err := r.Blob(d)
		require.NoError(t, err, "%s.Blob(%s)", name, d)
		require.NoError(t, b.Verify(), "%s: Verify(%s)", name, d)
		st.Layers[d] = fmt.Sprintf("%s %d", b.Digest(), b.Size())
	}
	return st
}

// listingUnder is the part of a tree listing below dir.
func listingUnder(all []string, dir string) []string {
	var out []string
	for _, p := range all {
		if strings.HasPrefix(p, dir+"/") && p != dir+"/" {
			out = append(out, p)
		}
	}
	return out
}

// ownListing is the part of a tree listing that belongs to repository dir
// itself (its _-prefixed subdirectories), not to nested repositories.
func ownListing(all []string, dir string) []string {
	var out []string
	for _, p := range listingUnder(all, dir) {
		if strings.HasPrefix(strings.TrimPrefix(p, dir+"/"), "_") {
			out = append(out, p)
		}
	}
	return out
}

func collectBlobs(t *testing.T, s *regstore.Store) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	for d, err := range s.Blobs() {
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

func repoNames(t *testing.T, s *regstore.Store) []string {
	t.Helper()
	var out []string
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		out = append(out, r.Name())
	}
	return out
}

func TestDeleteRepository(t *testing.T) {
	cases := []struct {
		del      []string // deleted in this order
		dirsGone []string // repository directories that must be gone
		dirsKept []string // ... and that must stay
	}{
		{del: []string{"a/b"}, dirsKept: []string{"a/b", "a"}},
		{del: []string{"a/b/c"}, dirsGone: []string{"a/b/c"}, dirsKept: []string{"a/b"}},
		{del: []string{"a"}, dirsKept: []string{"a"}},
		{del: []string{"a/b/c", "a/b"}, dirsGone: []string{"a/b/c", "a/b"}, dirsKept: []string{"a"}},
		{del: []string{"x/y"}, dirsGone: []string{"x/y", "x"}},
		{del: []string{"a/bb"}, dirsGone: []string{"a/bb"}, dirsKept: []string{"a/b"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.del, ","), func(t *testing.T) {
			onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
				g := buildDelTree(t, w)
				s, l := g.s, g.s.Layout()
				states := map[string]repoState{}
				for _, r := range delRepos {
					states[r] = readRepoState(t, s, r)
				}
				blobs := collectBlobs(t, s)
				before := backendtest.Listing(t, w, ".")

				for _, name := range c.del {
					require.NoError(t, s.DeleteRepository(name), "DeleteRepository(%q)", name)
				}
				after := backendtest.Listing(t, w, ".")

				for _, name := range delRepos {
					r := mustRepo(t, s, name)
					if slices.Contains(c.del, name) {
						ok, err := r.Exists()
						require.NoError(t, err)
						assert.False(t, ok, "%s.Exists() after delete", name)
						assert.Empty(t, ownListing(after, l.Repository(name)), "files of %s left", name)
						for tag := range states[name].Tags {
							tg, err := r.Tag(tag)
							require.NoError(t, err)
							_, err = tg.Resolve()
							assert.ErrorIs(t, err, fs.ErrNotExist, "Resolve(%s:%s) after delete", name, tag)
						}
						for d := range states[name].Manifests {
							_, err := r.Manifest(d)
							assert.ErrorIs(t, err, fs.ErrNotExist, "%s.Manifest(%s) after delete", name, d)
						}
						for d := range states[name].Layers {
							_, err := r.Blob(d)
							assert.ErrorIs(t, err, fs.ErrNotExist, "%s.Blob(%s) after delete", name, d)
						}
						continue
					}
					// Untouched: byte for byte, and still fully resolvable.
					assert.Equal(t, ownListing(before, l.Repository(name)), ownListing(after, l.Repository(name)), "files of %s", name)
					assert.Equal(t, states[name], readRepoState(t, s, name), "state of %s", name)
				}
				var wantRepos []string
				for _, r := range delRepos {
					if !slices.Contains(c.del, r) {
						wantRepos = append(wantRepos, r)
					}
				}
				assert.ElementsMatch(t, wantRepos, repoNames(t, s), "Repositories()")
				assert.Equal(t, blobs, collectBlobs(t, s), "blob data stays")
				for _, d := range c.dirsGone {
					_, err := fs.Stat(w, l.Repository(d))
					assert.ErrorIs(t, err, fs.ErrNotExist, "directory of %s", d)
				}
				for _, d := range c.dirsKept {
					_, err := fs.Stat(w, l.Repository(d))
					assert.NoError(t, err, "directory of %s", d)
				}
				_, err := fs.Stat(w, l.Repositories())
				assert.NoError(t, err, "repositories/ stays")
				backendtest.Clean(t, w, ".")
			})
		})
	}
}

// TestDeleteRepositoryFreesBlobsForGC: after a delete, GC frees what only
// the deleted repository referenced, and nothing a nested one uses.
func TestDeleteRepositoryFreesBlobsForGC(t *testing.T) {
	g := buildDelTree(t, regstore.NewMemFS())
	require.NoError(t, g.s.DeleteRepository("a/b"))
	plan, err := gc.Mark(t.Context(), g.s, gc.Options{Grace: -1})
	require.NoError(t, err)
	for _, d := range g.abOnly {
		assert.Contains(t, plan.Blobs, d, "blob only a/b used")
	}
	assert.NotContains(t, plan.Blobs, g.abLayer, "layer a/b/c shares")
}

// recordFS is a MemFS that records the writes and removals made through it.
type recordFS struct {
	*regstore.MemFS
	mu  sync.Mutex
	ops []string
}

func (r *recordFS) record(op, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op+" "+name)
}

func (r *recordFS) Create(name string) (regstore.FileWriter, error) {
	r.record("create", name)
	return r.MemFS.Create(name)
}

func (r *recordFS) Remove(name string) error {
	r.record("remove", name)
	return r.MemFS.Remove(name)
}

func (r *recordFS) RemoveAll(name string) error {
	r.record("removeall", name)
	return r.MemFS.RemoveAll(name)
}

func (r *recordFS) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

// deleteRank orders the paths of repository repo as a delete must visit
// them: tags, revisions, _layers, _uploads, _manifests, the directory.
func deleteRank(l regstore.Layout, repo, p string) int {
	under := func(dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	switch {
	case under(l.Tags(repo)):
		return 1
	case under(l.Revisions(repo)):
		return 2
	case under(l.Layers(repo)):
		return 3
	case under(l.Uploads(repo)):
		return 4
	case under(l.Manifests(repo)):
		return 5
	default:
		return 6
	}
}

// writeRank orders the links of repository repo as a push writes them:
// _layers, revisions, tag index entries, tag current links; 0 for
// anything else.
func writeRank(l regstore.Layout, repo, p string) int {
	switch {
	case strings.HasPrefix(p, l.Layers(repo)+"/"):
		return 1
	case strings.HasPrefix(p, l.Revisions(repo)+"/"):
		return 2
	case strings.HasPrefix(p, l.Tags(repo)+"/") && strings.Contains(p, "/index/"):
		return 3
	case strings.HasPrefix(p, l.Tags(repo)+"/") && strings.HasSuffix(p, "/current/link"):
		return 4
	default:
		return 0
	}
}

func TestDeleteRepositoryOrder(t *testing.T) {
	rec := &recordFS{MemFS: regstore.NewMemFS()}
	g := buildDelTree(t, rec)
	l := g.s.Layout()
	rec.take()
	require.NoError(t, g.s.DeleteRepository("a/b"))
	ops := rec.take()
	require.NotEmpty(t, ops)
	last := 0
	for _, op := range ops {
		verb, p, _ := strings.Cut(op, " ")
		assert.NotEqual(t, "create", verb, "delete wrote %s", p)
		assert.True(t, strings.HasPrefix(p, l.Repository("a/b")), "delete touched %s", p)
		assert.False(t, strings.HasPrefix(p, l.Repository("a/b/c")), "delete touched nested %s", p)
		r := deleteRank(l, "a/b", p)
		assert.GreaterOrEqual(t, r, last, "%s after a step of rank %d: %v", op, last, ops)
		last = max(last, r)
	}
	assert.Contains(t, ops, "remove "+l.TagCurrent("a/b", "latest"), "current link removed on its own first")
}

func TestMoveRepository(t *testing.T) {
	cases := []struct{ from, to string }{
		{"a/b", "z/moved"},      // has a nested repository, which stays
		{"a/b", "a/b/c/d"},      // into a nested path of itself
		{"a/b/c", "c"},          // a leaf to the top
		{"x/y", "x/y/z"},        // a leaf below itself
		{"a/bb", "a/b/c/e/f/g"}, // deep new path below another repository
	}
	for _, c := range cases {
		t.Run(c.from+"→"+c.to, func(t *testing.T) {
			onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
				g := buildDelTree(t, w)
				s, l := g.s, g.s.Layout()
				states := map[string]repoState{}
				for _, r := range delRepos {
					states[r] = readRepoState(t, s, r)
				}
				blobs := collectBlobs(t, s)
				before := backendtest.Listing(t, w, ".")

				require.NoError(t, s.MoveRepository(c.from, c.to), "MoveRepository(%q, %q)", c.from, c.to)
				after := backendtest.Listing(t, w, ".")

				assert.Equal(t, states[c.from], readRepoState(t, s, c.to), "%s after the move, against %s before", c.to, c.from)
				ok, err := mustRepo(t, s, c.from).Exists()
				require.NoError(t, err)
				assert.False(t, ok, "%s.Exists() after the move", c.from)
				assert.Empty(t, ownListing(after, l.Repository(c.from)), "files of %s left", c.from)
				assert.Empty(t, listingUnder(after, l.Uploads(c.to)), "uploads are not moved")
				for _, name := range delRepos {
					if name == c.from {
						continue
					}
					assert.Equal(t, ownListing(before, l.Repository(name)), ownListing(after, l.Repository(name)), "files of %s", name)
					assert.Equal(t, states[name], readRepoState(t, s, name), "state of %s", name)
				}
				assert.Equal(t, blobs, collectBlobs(t, s), "blob data is not touched")
				if c.from == "a/b" {
					b, err := mustRepo(t, s, c.to).Blob(g.alias)
					require.NoError(t, err, "alias link moved")
					assert.Equal(t, digest.Canonical, b.Digest().Algorithm())
				}
				// Every link of to is byte-identical to from's.
				var fromLinks, toLinks []string
				for _, p := range ownListing(before, l.Repository(c.from)) {
					if strings.HasSuffix(p, "/") || strings.HasPrefix(p, l.Uploads(c.from)+"/") {
						continue
					}
					fromLinks = append(fromLinks, strings.TrimPrefix(p, l.Repository(c.from)))
				}
				for _, p := range ownListing(after, l.Repository(c.to)) {
					if !strings.HasSuffix(p, "/") {
						toLinks = append(toLinks, strings.TrimPrefix(p, l.Repository(c.to)))
					}
				}
				assert.Equal(t, fromLinks, toLinks, "links of %s, against %s's", c.to, c.from)
				backendtest.Clean(t, w, ".")
			})
		})
	}
}

func TestMoveRepositoryOrder(t *testing.T) {
	rec := &recordFS{MemFS: regstore.NewMemFS()}
	g := buildDelTree(t, rec)
	l := g.s.Layout()
	rec.take()
	require.NoError(t, g.s.MoveRepository("a/b", "n"))
	ops := rec.take()
	// Writes to n bottom-up (layers, revisions, tag index, current), then
	// removals of a/b top-down.
	last, removing := 0, false
	for _, op := range ops {
		verb, p, _ := strings.Cut(op, " ")
		if verb == "create" {
			assert.False(t, removing, "%s after removals began", op)
			require.True(t, strings.HasPrefix(p, l.Repository("n")+"/"), "move wrote outside n: %s", p)
			r := writeRank(l, "n", p)
			require.NotZero(t, r, "unexpected write %s", p)
			assert.GreaterOrEqual(t, r, last, "%s after a write of rank %d", op, last)
			last = r
			continue
		}
		removing = true
		assert.True(t, strings.HasPrefix(p, l.Repository("a/b")), "move removed %s", p)
	}
	assert.True(t, removing, "a/b was not deleted")
}

// failFS fails every Create after the first n.
type failFS struct {
	*regstore.MemFS
	n int
}

var errMoveInjected = errors.New("injected failure")

func (f *failFS) Create(name string) (regstore.FileWriter, error) {
	if f.n <= 0 {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errMoveInjected}
	}
	f.n--
	return f.MemFS.Create(name)
}

func TestMoveRepositoryWriteFailure(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		ff := &failFS{MemFS: regstore.NewMemFS(), n: 1 << 30}
		g := buildDelTree(t, ff)
		before := backendtest.Listing(t, ff, ".")
		ff.n = n
		err := g.s.MoveRepository("a/b", "n")
		require.ErrorIs(t, err, errMoveInjected, "MoveRepository with %d writes allowed", n)
		var e *regstore.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "move repository", e.Op)
		assert.Equal(t, before, backendtest.Listing(t, ff, "."), "tree after a failed move (%d writes allowed)", n)
	}
}

func TestDeleteMoveRepositoryErrors(t *testing.T) {
	type call func(s *regstore.Store) error
	del := func(name string) call { return func(s *regstore.Store) error { return s.DeleteRepository(name) } }
	move := func(from, to string) call {
		return func(s *regstore.Store) error { return s.MoveRepository(from, to) }
	}
	cases := []struct {
		name     string
		readOnly bool
		setup    func(t *testing.T, g delTree)
		call     call
		op       string
		want     error
	}{
		{name: "delete: empty name", call: del(""), op: "delete repository", want: regstore.ErrInvalidName},
		{name: "delete: upper case", call: del("A"), op: "delete repository", want: regstore.ErrInvalidName},
		{name: "delete: dot dot", call: del("a/../x"), op: "delete repository", want: regstore.ErrInvalidName},
		{name: "delete: _manifests component", call: del("a/_manifests"), op: "delete repository", want: regstore.ErrInvalidName},
		{name: "delete: double slash", call: del("a//b"), op: "delete repository", want: regstore.ErrInvalidName},
		{name: "delete: missing", call: del("nope"), op: "delete repository", want: fs.ErrNotExist},
		{name: "delete: missing, below a repository", call: del("a/b/c/d"), op: "delete repository", want: fs.ErrNotExist},
		{name: "delete: only a parent directory", call: del("x"), op: "delete repository", want: fs.ErrNotExist},
		{name: "delete: read-only", readOnly: true, call: del("a/b"), op: "delete repository", want: errors.ErrUnsupported},
		{name: "move: invalid from", call: move("A", "n"), op: "move repository", want: regstore.ErrInvalidName},
		{name: "move: invalid to", call: move("a/b", "n/"), op: "move repository", want: regstore.ErrInvalidName},
		{name: "move: missing from", call: move("nope", "n"), op: "move repository", want: fs.ErrNotExist},
		{name: "move: to exists", call: move("a/b", "a/b/c"), op: "move repository", want: fs.ErrExist},
		{name: "move: to is from", call: move("a/b", "a/b"), op: "move repository", want: fs.ErrExist},
		{name: "move: to has only _layers", setup: func(t *testing.T, g delTree) {
			backendtest.Put(t, g.w, g.s.Layout().LayerLink("n", g.abLayer), g.abLayer.String())
		}, call: move("a/b", "n"), op: "move repository", want: fs.ErrExist},
		{name: "move: to has only _uploads", setup: func(t *testing.T, g delTree) {
			putUpload(t, g.s, testUpload{"n", "u", rfc3339(time.Now()), time.Now()})
		}, call: move("a/b", "n"), op: "move repository", want: fs.ErrExist},
		{name: "move: read-only", readOnly: true, call: move("a/b", "n"), op: "move repository", want: errors.ErrUnsupported},
		{name: "move: corrupt tag link", setup: func(t *testing.T, g delTree) {
			backendtest.Put(t, g.w, g.s.Layout().TagCurrent("a/b", "multi"), "sha256:nothex\n")
		}, call: move("a/b", "n"), op: "move repository", want: regstore.ErrCorruptLink},
		{name: "move: corrupt layer link", setup: func(t *testing.T, g delTree) {
			backendtest.Put(t, g.w, g.s.Layout().LayerLink("a/b", g.abLayer), g.abLayer.String()+"\n")
		}, call: move("a/b", "n"), op: "move repository", want: regstore.ErrCorruptLink},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := buildDelTree(t, regstore.NewMemFS())
			if c.setup != nil {
				c.setup(t, g)
			}
			s := g.s
			if c.readOnly {
				var err error
				s, err = regstore.Open(readOnly{g.w})
				require.NoError(t, err)
			}
			before := backendtest.Listing(t, g.w, ".")
			err := c.call(s)
			require.ErrorIs(t, err, c.want)
			var e *regstore.Error
			require.ErrorAs(t, err, &e, "error %v is not a *regstore.Error", err)
			assert.Equal(t, c.op, e.Op, "Op of %v", err)
			if !strings.HasSuffix(c.name, "empty name") {
				assert.NotEmpty(t, e.Repository, "Repository of %v", err)
			}
			assert.Equal(t, before, backendtest.Listing(t, g.w, "."), "tree changed by a failed call")
		})
	}
}

// TestDeleteRepositoryLeftovers deletes a repository that has only
// _layers links and an upload (an abandoned first push).
func TestDeleteRepositoryLeftovers(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		r := mustRepo(t, s, "first/push")
		_, err = r.PutBlob(io.LimitReader(bytes.NewReader(make([]byte, 100)), 100), "", -1)
		require.NoError(t, err)
		putUpload(t, s, testUpload{"first/push", "u1", rfc3339(time.Now()), time.Now()})
		require.NoError(t, s.DeleteRepository("first/push"))
		assert.Empty(t, listingUnder(backendtest.Listing(t, w, "."), s.Layout().Repositories()), "repositories/ after the delete")
		assert.ErrorIs(t, s.DeleteRepository("first/push"), fs.ErrNotExist, "second DeleteRepository")
	})
}

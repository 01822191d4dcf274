package crashtest_test

// Crash consistency: every mutating operation is run through a backend
// (internal/faultfs) that fails, or "crashes", at its N-th mutating backend
// operation, for every N from 1 to the operation's count; the tree left
// behind is then checked on the real backend (MemFS and Dir), and the
// operation is run again without faults and must give the same tree as a
// clean run. The counts are logged ("crash points") for the README.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/internal/faultfs"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashAge is how old every file of a fixture is made, so that garbage
// collection with a grace window (DefaultGrace, an hour) may remove it.
const crashAge = 3 * time.Hour

// crashFixture is the tree most operations start from:
//
//	app      img1 (OCI; layers L1, L2) tagged latest and v1
//	         img2 (OCI; L1, L3) tagged moving, which pointed at img3 first
//	         img3 (Docker schema2; L4), untagged (in moving's index)
//	         the config and layer L5 of img5, linked but not yet pushed
//	         a recent upload session
//	app/web  web (L1) tagged 1.0 (a nested repository)
//	other    img1 again, tagged x
//	         and an orphan blob
type crashFixture struct {
	m                      *regstore.MemFS
	img1, img2, img3, img5 *regstore.Manifest
	l3, l4                 digest.Digest
	orphan                 digest.Digest
}

func crashRepo(t testing.TB, s *regstore.Store, name string) *regstore.Repository {
	t.Helper()
	r, err := s.Repository(name)
	require.NoError(t, err, "Repository(%q)", name)
	return r
}

func buildCrashFixture(t testing.TB) *crashFixture {
	t.Helper()
	f := &crashFixture{m: regstore.NewMemFS()}
	s, err := regstore.Open(f.m)
	require.NoError(t, err)
	layer := func(i int) regstoretest.Layer { return regstoretest.RandomLayer(uint64(900+i), 48) }
	l1, l2, l3, l4, l5 := layer(1), layer(2), layer(3), layer(4), layer(5)
	f.l3, f.l4 = digest.FromBytes(l3.Compressed), digest.FromBytes(l4.Compressed)

	app := crashRepo(t, s, "app")
	f.img1 = regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{l1, l2}}, "latest", "v1")
	f.img3 = regstoretest.Push(t, app, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{l4}}, "moving")
	f.img2 = regstoretest.Push(t, app, regstoretest.Image{Layers: []regstoretest.Layer{l1, l3}}, "moving")
	regstoretest.Push(t, crashRepo(t, s, "app/web"), regstoretest.Image{Layers: []regstoretest.Layer{l1}}, "1.0")
	regstoretest.Push(t, crashRepo(t, s, "other"), regstoretest.Image{Layers: []regstoretest.Layer{l1, l2}}, "x")
	f.orphan, err = regstoretest.OrphanBlob(s, []byte("orphan blob"))
	require.NoError(t, err)
	require.NoError(t, regstoretest.HalfWrittenUpload(s, "app", "0b5a6a4e-6f0e-4a8e-9d49-4c1a2b3c4d5e", time.Now()))

	// img5 is pushed into a scratch store for its bytes; only its blobs
	// go into app.
	scratch, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	sr := crashRepo(t, scratch, "app")
	f.img5 = regstoretest.Push(t, sr, regstoretest.Image{Architecture: "arm64", Layers: []regstoretest.Layer{l5}})
	for desc := range f.img5.Blobs() {
		b, err := sr.Blob(desc.Digest)
		require.NoError(t, err)
		rc, err := b.Open()
		require.NoError(t, err)
		_, err = app.PutBlob(rc, desc.Digest, desc.Size)
		rc.Close()
		require.NoError(t, err)
	}
	crashAgeTree(t, f.m)
	return f
}

// crashAgeTree makes every file of m crashAge old.
func crashAgeTree(t testing.TB, m *regstore.MemFS) {
	t.Helper()
	old := time.Now().Add(-crashAge)
	require.NoError(t, fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return m.Chtimes(p, old)
	}))
}

// crashClone copies src into a new MemFS: files with their content and
// modification times, and empty directories.
func crashClone(t testing.TB, src *regstore.MemFS) *regstore.MemFS {
	t.Helper()
	dst := regstore.NewMemFS()
	put := func(name string, b []byte) error {
		fw, err := dst.Create(name)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return errors.Join(err, fw.Cancel())
		}
		return fw.Commit()
	}
	require.NoError(t, fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			entries, err := src.ReadDir(p)
			if err != nil || len(entries) > 0 {
				return err
			}
			placeholder := path.Join(p, ".placeholder")
			if err := put(placeholder, nil); err != nil {
				return err
			}
			return dst.Remove(placeholder)
		}
		b, err := src.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := put(p, b); err != nil {
			return err
		}
		return dst.Chtimes(p, fi.ModTime())
	}))
	return dst
}

// crashBackends load a fixture into a fresh backend of each kind. The
// returned function releases it.
var crashBackends = []struct {
	name string
	load func(t testing.TB, parent string, m *regstore.MemFS) (regstore.WriteFS, func())
}{
	{"MemFS", func(t testing.TB, _ string, m *regstore.MemFS) (regstore.WriteFS, func()) {
		return crashClone(t, m), func() {}
	}},
	{"Dir", func(t testing.TB, parent string, m *regstore.MemFS) (regstore.WriteFS, func()) {
		dir, err := os.MkdirTemp(parent, "tree")
		require.NoError(t, err)
		require.NoError(t, regstoretest.WriteTree(m, dir), "WriteTree")
		d, err := regstore.OpenDir(dir)
		require.NoError(t, err, "OpenDir")
		return d, func() { d.Close(); os.RemoveAll(dir) }
	}},
}

// crashTempDir is a directory for Dir trees: in memory (/dev/shm) when the
// system has one, since these tests are about the order of operations and
// not the durability of fsync, which makes thousands of runs slow on disk.
func crashTempDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "regstore-crash-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// crashGCLeftover is what an interrupted collection leaves: blob data
// moved aside ("<data>.gc") and its journal.
var crashGCLeftover = regexp.MustCompile(`(/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}/data\.gc|/_gc/aside(-[^/]+)?)$`)

// crashRemovable reports whether a problem Check finds is a leftover that
// can be removed with nothing lost and that no reader trips over:
//
//   - temp-file: a *.tmp file of an unfinished write (FileWriter temporary
//     files, PutBlob's staging file, a hard-link staging name). Readers of
//     the layout (the registry, regstore) match exact basenames ("data",
//     "link") and never read it; the integrity check says it "can be
//     removed".
//   - blob-orphan: blob data nothing links or references, left when a
//     crash came after the data was published and before the link to it
//     (publishing is bottom-up). The registry's and our garbage collection
//     remove it; nothing points at it.
//   - gc-interrupted: blob data gc.Sweep moved aside (blobs/.../data.gc),
//     which only happens to blobs the plan doomed, and the journal naming
//     them (_gc/aside-<run>), from which the next gc.Sweep puts the data
//     back.
//     Nothing points at it unless a pointer dangles, and the
//     dangling-pointer check catches that separately.
//   - tag-without-current: a tag directory whose current link is not
//     written yet (a tag write crashed after the index entry, which goes
//     first) or already gone (a tag delete crashed after removing it, which
//     goes first). The registry leaves the same; a pull of the tag answers
//     "unknown", as for a missing tag; the re-run finishes it.
//
// Every other kind (blob-missing, reference-missing, reference-unlinked,
// tag-unresolvable, tag-not-in-index, the link and manifest kinds) is damage
// a reader sees, so it may appear after a fault only where it was already
// there before the operation, or where the operation's clean run leaves it
// too (for example Repair's quarantine of a corrupt blob, whose links then
// name missing data, as documented).
func crashRemovable(p check.Problem) bool {
	switch p.Kind {
	case check.TempFileLeft, check.BlobOrphan, check.GCInterrupted, check.TagWithoutCurrent:
		return true
	}
	return false
}

// crashState is what the invariants look at.
type crashState struct {
	files    []string        // "path sha256" of every file but *.tmp and data.gc
	visible  []string        // repositories and tags as listed
	dangling map[string]bool // "path -> target" of pointers to missing data
	corrupt  map[string]bool // blob data paths whose content is not their digest
	problems map[string]bool // "kind path" of Check's problems that are not removable
	leftover []string        // removable problems, for the log
}

// readCrashState reads the whole tree of w.
func readCrashState(t testing.TB, w regstore.WriteFS) crashState {
	t.Helper()
	s, err := regstore.Open(w)
	require.NoError(t, err)
	l := s.Layout()
	st := crashState{dangling: map[string]bool{}, corrupt: map[string]bool{}, problems: map[string]bool{}}

	require.NoError(t, fs.WalkDir(w, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".tmp") || crashGCLeftover.MatchString("/"+p) {
			return err
		}
		b, err := fs.ReadFile(w, p)
		if err != nil {
			return err
		}
		st.files = append(st.files, p+" "+digest.FromBytes(b).Encoded()[:16])
		return nil
	}))
	for r, err := range s.Repositories() {
		require.NoError(t, err, "Repositories")
		st.visible = append(st.visible, "repository "+r.Name())
		for tag, err := range r.Tags() {
			require.NoError(t, err, "Tags(%s)", r.Name())
			st.visible = append(st.visible, "tag "+tag.String())
		}
	}

	exists := func(d digest.Digest) bool {
		fi, err := fs.Stat(w, l.BlobData(d))
		return err == nil && !fi.IsDir()
	}
	readLink := func(p string) (digest.Digest, bool) {
		b, err := fs.ReadFile(w, p)
		if err != nil {
			return "", false
		}
		d, err := regstore.ParseLink(b)
		return d, err == nil
	}
	for e, err := range s.Walk() {
		require.NoError(t, err, "Walk")
		switch e.Kind {
		case regstore.LayerLink, regstore.RevisionLink, regstore.TagIndexLink, regstore.TagCurrentLink:
			target, ok := readLink(e.Path)
			switch {
			case !ok:
				st.dangling[e.Path+" -> unreadable"] = true
			case e.Kind == regstore.TagCurrentLink:
				// A tag resolves through the revision link.
				rev, ok := readLink(l.RevisionLink(e.Repository, target))
				if !ok || !exists(rev) {
					st.dangling[e.Path+" -> "+target.String()] = true
				}
			case !exists(target):
				st.dangling[e.Path+" -> "+target.String()] = true
			}
		case regstore.BlobData:
			b, err := fs.ReadFile(w, e.Path)
			require.NoError(t, err)
			if e.Digest.Algorithm().FromBytes(b) != e.Digest {
				st.corrupt[e.Path] = true
			}
		}
	}
	// Links only: blob data is re-hashed above, once.
	for p, err := range check.Problems(context.Background(), s, check.Options{LinksOnly: true}) {
		require.NoError(t, err, "Check")
		if crashRemovable(p) {
			st.leftover = append(st.leftover, string(p.Kind)+" "+p.Path)
			continue
		}
		st.problems[string(p.Kind)+" "+p.Path] = true
	}
	return st
}

// subset lists the keys of got in neither of allowed.
func crashNotIn(got map[string]bool, allowed ...map[string]bool) []string {
	var out []string
	for k := range got {
		if !slices.ContainsFunc(allowed, func(m map[string]bool) bool { return m[k] }) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// crashCase is one mutating operation. run is called on a store over the
// faulted backend, and then again over the bare backend; it must be
// deterministic in the backend operations it makes.
type crashCase struct {
	name    string
	fixture *regstore.MemFS
	run     func(ctx context.Context, s *regstore.Store) error
	// gone, for deletes, accepts a re-run that finds the thing already
	// deleted (an error wrapping fs.ErrNotExist); the tree must still
	// equal the clean run's.
	gone bool
	// quarantined is a blob whose data the clean run moves aside on
	// purpose, so that links naming it dangle afterwards (Repair).
	quarantined digest.Digest
}

// buildCrashBroken damages a copy of the fixture with the kit of
// regstoretest/broken.go, for Repair, and returns it with what Check finds
// there and the digest of the invalid manifest it holds.
func buildCrashBroken(t testing.TB, f *crashFixture) (*regstore.MemFS, []check.Problem, digest.Digest) {
	t.Helper()
	broken := crashClone(t, f.m)
	bs, err := regstore.Open(broken)
	require.NoError(t, err)
	cfg, _ := f.img1.Config()
	require.NoError(t, regstoretest.TagWithoutIndexEntry(bs, "app", "v1"))                     // tag-not-in-index
	require.NoError(t, regstoretest.UnlinkReference(bs, "other", f.img1.Digest(), cfg.Digest)) // reference-unlinked
	require.NoError(t, regstoretest.DanglingLink(bs, "app", f.l4.String()))                    // blob-missing
	invalid, err := regstoretest.InvalidManifest(bs, "app/web", nil)                           // manifest-invalid
	require.NoError(t, err)
	require.NoError(t, regstoretest.CorruptBlob(bs, f.l3)) // blob-corrupt
	crashAgeTree(t, broken)
	var problems []check.Problem
	for p, err := range check.Problems(context.Background(), bs, check.Options{Workers: 1}) {
		require.NoError(t, err)
		problems = append(problems, p)
	}
	kinds := map[check.ProblemKind]bool{}
	for _, p := range problems {
		kinds[p.Kind] = true
	}
	for _, k := range []check.ProblemKind{check.TagNotInIndex, check.ReferenceUnlinked, check.BlobMissing,
		check.ManifestInvalid, check.BlobCorrupt} {
		require.True(t, kinds[k], "Check on the broken fixture finds no %s: %v", k, problems)
	}
	return broken, problems, invalid
}

// crashCases are the operations under test, on fixtures built once.
func crashCases(t *testing.T) []crashCase {
	f := buildCrashFixture(t)
	src, err := regstore.Open(f.m)
	require.NoError(t, err)
	repo := func(s *regstore.Store, name string) *regstore.Repository { return crashRepo(t, s, name) }
	blob := []byte("a new blob, pushed whole")

	// An OCI layout of app, the source of the import.
	layout := regstore.NewMemFS()
	_, err = migrate.ExportOCILayout(context.Background(), repo(src, "app"), layout, migrate.ExportOptions{Workers: 1})
	require.NoError(t, err, "ExportOCILayout")

	broken, problems, _ := buildCrashBroken(t, f)

	collect := func(opts gc.Options) func(context.Context, *regstore.Store) error {
		return func(ctx context.Context, s *regstore.Store) error {
			plan, err := gc.Mark(ctx, s, opts)
			if err != nil {
				return err
			}
			_, err = gc.Sweep(ctx, s, plan, opts)
			return err
		}
	}

	return []crashCase{
		{name: "Repository.PutBlob", fixture: f.m, run: func(_ context.Context, s *regstore.Store) error {
			_, err := repo(s, "app").PutBlob(bytes.NewReader(blob), digest.FromBytes(blob), int64(len(blob)))
			return err
		}},
		{name: "Repository.PutBlob/sha512", fixture: f.m, run: func(_ context.Context, s *regstore.Store) error {
			// Staged (the canonical digest is not known), then an alias link.
			_, err := repo(s, "app").PutBlob(bytes.NewReader(blob), digest.SHA512.FromBytes(blob), -1)
			return err
		}},
		{name: "Store.PutBlob", fixture: f.m, run: func(_ context.Context, s *regstore.Store) error {
			_, err := s.PutBlob(bytes.NewReader(blob), "", -1)
			return err
		}},
		{name: "Repository.PutManifest", fixture: f.m, run: func(_ context.Context, s *regstore.Store) error {
			_, err := repo(s, "app").PutManifest(f.img5.MediaType(), f.img5.Bytes(), "v5", "latest")
			return err
		}},
		{name: "Tag.Set", fixture: f.m, run: func(_ context.Context, s *regstore.Store) error {
			tag, err := repo(s, "app").Tag("latest")
			if err != nil {
				return err
			}
			return tag.Set(f.img2.Digest())
		}},
		{name: "Tag.Delete", fixture: f.m, gone: true, run: func(_ context.Context, s *regstore.Store) error {
			tag, err := repo(s, "app").Tag("moving")
			if err != nil {
				return err
			}
			return tag.Delete()
		}},
		{name: "Repository.DeleteManifest", fixture: f.m, gone: true, run: func(_ context.Context, s *regstore.Store) error {
			return repo(s, "app").DeleteManifest(f.img1.Digest())
		}},
		{name: "Store.DeleteRepository", fixture: f.m, gone: true, run: func(_ context.Context, s *regstore.Store) error {
			return s.DeleteRepository("app")
		}},
		{name: "gc.Sweep/no-grace", fixture: f.m, run: collect(gc.Options{DeleteUntagged: true, Grace: -1, Workers: 1})},
		{name: "gc.Sweep/grace", fixture: f.m, run: collect(gc.Options{DeleteUntagged: true, Grace: time.Hour, Workers: 1})},
		{name: "check.Repair", fixture: broken, quarantined: f.l3, run: func(ctx context.Context, s *regstore.Store) error {
			_, err := check.Repair(ctx, s, problems, check.RepairOptions{
				RemoveDanglingLinks: true, RestoreTagIndex: true, Quarantine: true, Relink: true})
			return err
		}},
		{name: "Copy", fixture: regstore.NewMemFS(), run: func(ctx context.Context, s *regstore.Store) error {
			_, err := migrate.Copy(ctx, s, src, migrate.CopyOptions{Tags: map[string][]string{"app": {"v1"}}, Workers: 1})
			return err
		}},
		{name: "migrate.ImportOCILayout", fixture: f.m, run: func(ctx context.Context, s *regstore.Store) error {
			_, err := migrate.ImportOCILayout(ctx, repo(s, "imported"), layout, migrate.ImportOptions{
				Tags: map[string]string{"moving": "moving"}, Workers: 1})
			return err
		}},
	}
}

// TestCrashConsistency runs every crash case at every crash point, in both
// fault modes, on both backends.
func TestCrashConsistency(t *testing.T) {
	cases := crashCases(t)
	points := map[string]int{}
	var mu sync.Mutex
	t.Run("ops", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				for _, b := range crashBackends {
					t.Run(b.name, func(t *testing.T) {
						n := crashRunCase(t, c, b.load)
						if b.name == "MemFS" {
							mu.Lock()
							points[c.name] = n
							mu.Unlock()
						}
					})
				}
			})
		}
	})
	total := 0
	var lines []string
	for _, c := range cases {
		total += points[c.name]
		lines = append(lines, fmt.Sprintf("%s=%d", c.name, points[c.name]))
	}
	t.Logf("crash points per operation (each run in crash and fail mode, on MemFS and Dir): %s; total %d",
		strings.Join(lines, " "), total)
}

// crashRunCase runs one case on one backend and returns its number of crash
// points.
func crashRunCase(t *testing.T, c crashCase, load func(testing.TB, string, *regstore.MemFS) (regstore.WriteFS, func())) int {
	ctx := context.Background()
	parent := crashTempDir(t)

	// The clean run, counted.
	w, release := load(t, parent, c.fixture)
	before := readCrashState(t, w)
	counter := faultfs.New(w, faultfs.Fault{})
	s, err := regstore.Open(counter.FS())
	require.NoError(t, err)
	require.NoError(t, c.run(ctx, s), "clean run")
	clean := readCrashState(t, w)
	release()
	ops := counter.Ops()
	require.NotEmpty(t, ops, "the operation changes nothing")
	require.NotEqual(t, before.files, clean.files, "the clean run changed no file")
	for _, p := range crashNotIn(clean.dangling, before.dangling) {
		if c.quarantined == "" || !strings.HasSuffix(p, " -> "+c.quarantined.String()) {
			t.Errorf("dangling pointer after the clean run: %s", p)
		}
	}
	assert.Empty(t, crashNotIn(clean.corrupt, before.corrupt), "corrupt blobs after the clean run")

	var leftovers int
	for _, mode := range []faultfs.Mode{faultfs.Crash, faultfs.Fail} {
		for at := 1; at <= len(ops); at++ {
			what := fmt.Sprintf("%s at op %d/%d (%v)", mode, at, len(ops), ops[at-1])
			w, release := load(t, parent, c.fixture)
			in := faultfs.New(w, faultfs.Fault{At: at, Mode: mode})
			s, err := regstore.Open(in.FS())
			require.NoError(t, err)
			err = c.run(ctx, s)
			require.True(t, in.Fired(), "%s: the fault was not reached: the operation is not deterministic", what)
			got := in.Ops()
			require.Equal(t, ops[at-1].Kind, got[at-1].Kind, "%s: operation %d differs from the clean run's", what, at)

			after := readCrashState(t, w)
			if mode == faultfs.Fail {
				// The process goes on: the error must say what happened,
				// unless what failed was best-effort and the result is
				// the clean one anyway.
				if err == nil {
					assert.Equal(t, clean.files, after.files, "%s: nil error, and the tree differs from the clean run's", what)
				} else {
					assert.ErrorIs(t, err, faultfs.ErrInjected, "%s", what)
				}
			}
			assert.Empty(t, crashNotIn(after.dangling, before.dangling, clean.dangling), "%s: new dangling pointers", what)
			assert.Empty(t, crashNotIn(after.corrupt, before.corrupt), "%s: blob data that does not match its digest", what)
			assert.Empty(t, crashNotIn(after.problems, before.problems, clean.problems), "%s: Check finds more than removable leftovers", what)
			leftovers += len(after.leftover)

			// Running the operation again, with nothing failing, completes it.
			s, err = regstore.Open(w)
			require.NoError(t, err)
			err = c.run(ctx, s)
			if c.gone && errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
			assert.NoError(t, err, "%s: re-run", what)
			again := readCrashState(t, w)
			assert.Equal(t, clean.files, again.files, "%s: files after the re-run", what)
			assert.Equal(t, clean.visible, again.visible, "%s: repositories and tags after the re-run", what)
			assert.Empty(t, crashNotIn(again.problems, clean.problems), "%s: problems after the re-run", what)
			release()
			if t.Failed() {
				t.Logf("%s: operations %v", what, got)
				return len(ops)
			}
		}
	}
	t.Logf("%d crash points, %d runs, %d removable leftovers found after faults",
		len(ops), 2*len(ops), leftovers)
	return len(ops)
}

// crashAt runs op on a fresh clone of m through a backend that crashes at
// the first mutating operation match accepts, and returns the clone.
func crashAt(t *testing.T, m *regstore.MemFS, match func(faultfs.Op) bool, op func(*regstore.Store) error) *regstore.MemFS {
	t.Helper()
	probe := faultfs.New(crashClone(t, m), faultfs.Fault{})
	s, err := regstore.Open(probe.FS())
	require.NoError(t, err)
	require.NoError(t, op(s), "clean run")
	at := slices.IndexFunc(probe.Ops(), match) + 1
	require.Positive(t, at, "no such operation in %v", probe.Ops())

	w := crashClone(t, m)
	in := faultfs.New(w, faultfs.Fault{At: at, Mode: faultfs.Crash})
	s, err = regstore.Open(in.FS())
	require.NoError(t, err)
	assert.Error(t, op(s), "run crashed at %v", probe.Ops()[at-1])
	require.True(t, in.Fired())
	return w
}

// TestCrashDeleteManifestGhostTag: Repository.DeleteManifest deletes each
// tag pointing at the manifest as Tag.Delete does, current link first and
// then the tag directory. A crash between the two leaves the tag directory
// with its index and no current link: the registry (and Repository.Tags)
// still lists the tag, a pull of it answers "manifest unknown", and running
// DeleteManifest again does not remove it, since it only finds tags by
// their current links.
//
// Proposed fix (tag.go/delete.go): DeleteManifest also deletes, before the
// revision link, every tag directory that has no current link and whose
// index names d (an interrupted delete of that tag); or Check reports a tag
// directory without a current link, and Repair removes it.
func TestCrashDeleteManifestGhostTag(t *testing.T) {
	f := buildCrashFixture(t)
	del := func(s *regstore.Store) error { return crashRepo(t, s, "app").DeleteManifest(f.img1.Digest()) }
	w := crashAt(t, f.m, func(op faultfs.Op) bool {
		return op.Kind == faultfs.OpRemoveAll && strings.HasSuffix(op.Name, "/tags/latest")
	}, del)
	s, err := regstore.Open(w)
	require.NoError(t, err)
	if err := del(s); !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err, "DeleteManifest re-run")
	}
	for tag, err := range crashRepo(t, s, "app").Tags() {
		require.NoError(t, err)
		assert.NotEqual(t, "latest", tag.Name(), "tag latest, which pointed at the deleted manifest, is still listed")
	}
}

// TestCrashRepairQuarantineResume: Repair quarantines an invalid manifest by
// moving its revision link directory, then its data. A crash between the
// two leaves the data in blobs/, linked by nothing: a re-run of Repair with
// the same problems skips the problem (its revision link is gone), and a
// fresh Check sees only an orphan blob, which garbage collection then
// deletes instead of keeping it in quarantine as Repair promises. Nothing
// the registry serves is lost, but the quarantined evidence is.
//
// Proposed fix (repair.go): when re-validating a manifest-invalid problem
// whose revision link is already in the quarantine, carry on with the data
// if it is still in blobs/ and no other link names it.
func TestCrashRepairQuarantineResume(t *testing.T) {
	f := buildCrashFixture(t)
	broken, problems, invalid := buildCrashBroken(t, f)
	opts := check.RepairOptions{Quarantine: true}
	repair := func(s *regstore.Store) error {
		_, err := check.Repair(context.Background(), s, problems, opts)
		return err
	}
	w := crashAt(t, broken, func(op faultfs.Op) bool {
		return op.Kind == faultfs.OpRename && strings.Contains(op.Name, "/blobs/") && strings.Contains(op.Name, invalid.Encoded())
	}, repair)
	s, err := regstore.Open(w)
	require.NoError(t, err)
	require.NoError(t, repair(s), "Repair re-run")
	_, err = s.Blob(invalid)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the invalid manifest's data is still in blobs/ after the re-run")
	_, err = fs.Stat(w, path.Join(s.Layout().Root(), regstore.QuarantineDir, "blobs", "sha256", invalid.Encoded()[:2], invalid.Encoded(), "data"))
	assert.NoError(t, err, "the invalid manifest's data is not in quarantine after the re-run")
}

// TestCrashGCAsideConcurrentLink: gc.Sweep with a grace window moves doomed
// blob data aside to "<data>.gc", looks again for young links, and puts
// back what they now name. If a writer links such a blob meanwhile (a
// cross-repository mount, which only needs the data to exist when it
// checks) and the collector then crashes before it puts the data back, the
// new link names data that exists only as "<data>.gc". Nothing ever renames
// it back but the next gc.Sweep, from the journal written before the move:
// the blob must not be lost for the repository that just mounted it.
func TestCrashGCAsideConcurrentLink(t *testing.T) {
	f := buildCrashFixture(t)
	opts := gc.Options{DeleteUntagged: true, Grace: time.Hour, Workers: 1}

	// mount returns a Before hook that links the orphan blob into other,
	// through the bare backend, just before the collector moves it aside.
	mount := func(w regstore.WriteFS) func(faultfs.Op) {
		done := false
		return func(op faultfs.Op) {
			if done || op.Kind != faultfs.OpRename || !strings.HasSuffix(op.NewName, f.orphan.Encoded()+"/data.gc") {
				return
			}
			done = true
			s, err := regstore.Open(w)
			require.NoError(t, err)
			_, err = crashRepo(t, s, "other").LinkBlob(f.orphan)
			require.NoError(t, err, "LinkBlob(%s) before it is moved aside", f.orphan)
		}
	}
	collect := func(s *regstore.Store) error {
		plan, err := gc.Mark(context.Background(), s, opts)
		if err != nil {
			return err
		}
		require.Contains(t, plan.Blobs, f.orphan, "the plan dooms the orphan")
		_, err = gc.Sweep(context.Background(), s, plan, opts)
		return err
	}
	readable := func(w regstore.WriteFS) error {
		s, err := regstore.Open(w)
		require.NoError(t, err)
		b, err := crashRepo(t, s, "other").Blob(f.orphan)
		if err != nil {
			return err
		}
		return b.Verify()
	}

	// Without a crash, the second look puts the data back: the mount wins.
	w := crashClone(t, f.m)
	counter := faultfs.New(w, faultfs.Fault{Before: mount(w)})
	s, err := regstore.Open(counter.FS())
	require.NoError(t, err)
	require.NoError(t, collect(s))
	require.NoError(t, readable(w), "blob mounted during the collection, no crash")
	at := slices.IndexFunc(counter.Ops(), func(op faultfs.Op) bool {
		return op.Kind == faultfs.OpRename && strings.HasSuffix(op.NewName, f.orphan.Encoded()+"/data.gc")
	}) + 1
	require.Positive(t, at)
	t.Logf("crash points after the move aside: %d..%d", at+1, len(counter.Ops()))

	// A crash at any point after the move aside, and before the data is
	// put back, then a re-run of the collection, as an operator would do.
	for n := at + 1; n <= len(counter.Ops()); n++ {
		w := crashClone(t, f.m)
		in := faultfs.New(w, faultfs.Fault{At: n, Mode: faultfs.Crash, Before: mount(w)})
		s, err := regstore.Open(in.FS())
		require.NoError(t, err)
		assert.Error(t, collect(s), "collection crashed at op %d", n)
		s, err = regstore.Open(w)
		require.NoError(t, err)
		plan, err := gc.Mark(context.Background(), s, opts)
		require.NoError(t, err, "gc.Mark after the crash")
		_, err = gc.Sweep(context.Background(), s, plan, opts)
		require.NoError(t, err, "gc.Sweep after the crash")
		assert.NoError(t, readable(w), "blob mounted during a collection that crashed at op %d (%v), after a re-run", n, in.Ops()[n-1])
	}
}

package check_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quarantined is where Repair moves p.
func quarantined(s *regstore.Store, p string) string {
	root := s.Layout().Root()
	return path.Join(root, regstore.QuarantineDir, strings.TrimPrefix(p, root+"/"))
}

// actionLines is "op path" (and " -> to" for a quarantine) per action, in
// order.
func actionLines(as []check.RepairAction) []string {
	var out []string
	for _, a := range as {
		s := string(a.Op) + " " + a.Path
		if a.To != "" {
			s += " -> " + a.To
		}
		out = append(out, s)
	}
	return out
}

// tagDigests resolves every tag of every repository, as a pull by tag
// does; tags that do not resolve are left out.
func tagDigests(t *testing.T, s *regstore.Store) map[string]digest.Digest {
	t.Helper()
	out := map[string]digest.Digest{}
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		for tg, err := range r.Tags() {
			require.NoError(t, err)
			if m, err := tg.Resolve(); err == nil {
				out[tg.String()] = m.Digest()
			}
		}
	}
	return out
}

// secondIndex is the index of multi (index or lst) that Check reports
// second: it walks revisions in digest order.
func secondIndex(k *kit) digest.Digest { return max(k.index.Digest(), k.lst.Digest()) }

type repairCase struct {
	name string
	brk  func(t *testing.T, k *kit)
	opts check.RepairOptions
	// pass selects the problems handed to Repair (nil: all of them).
	pass func(k *kit, p check.Problem) bool
	// fixed are the kinds Check must no longer report.
	fixed []check.ProblemKind
	// actions are the expected actions (see actionLines), in order.
	actions func(k *kit) []string
	// after is every problem Check reports after the repair (see
	// problemPaths), quarantined files aside.
	after func(k *kit) []string
	// more checks, after the repair.
	more func(t *testing.T, k *kit)
}

// putTag points tag at d by writing its links straight through the
// backend (Tag.Set refuses a manifest that does not read).
func putTag(t *testing.T, k *kit, repo, tag string, d digest.Digest) {
	w := k.s.FS().(regstore.WriteFS)
	l := k.s.Layout()
	backendtest.Put(t, w, l.TagIndexLink(repo, tag, d), d.String())
	backendtest.Put(t, w, l.TagCurrent(repo, tag), d.String())
}

var invalidManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.nope"}`)

var repairCases = []repairCase{
	{
		name:  "remove dangling layer link",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.DanglingLink(k.s, "app", string(k.l2))) },
		opts:  check.RepairOptions{RemoveDanglingLinks: true},
		fixed: []check.ProblemKind{check.BlobMissing},
		actions: func(k *kit) []string {
			return []string{"remove-link " + k.s.Layout().LayerLink("app", k.l2)}
		},
		// The manifest still needs the lost layer: that is the truth.
		after: func(k *kit) []string {
			return []string{kp(check.ReferenceMissing, k.s.Layout().BlobData(k.img.Digest()))}
		},
	},
	{
		name:  "remove dangling manifest: tag first, then revision link",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.DanglingLink(k.s, "app", "docker")) },
		opts:  check.RepairOptions{RemoveDanglingLinks: true},
		fixed: []check.ProblemKind{check.BlobMissing, check.TagUnresolvable},
		actions: func(k *kit) []string {
			l := k.s.Layout()
			return []string{"remove-tag " + l.Tag("app", "docker"), "remove-link " + l.RevisionLink("app", k.docker.Digest())}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "remove dangling revision link: its tags go first even when not passed",
		brk:  func(t *testing.T, k *kit) { require.NoError(t, regstoretest.DanglingLink(k.s, "app", "docker")) },
		opts: check.RepairOptions{RemoveDanglingLinks: true},
		pass: func(k *kit, p check.Problem) bool {
			return p.Path == k.s.Layout().RevisionLink("app", k.docker.Digest())
		},
		fixed: []check.ProblemKind{check.BlobMissing, check.TagUnresolvable},
		actions: func(k *kit) []string {
			l := k.s.Layout()
			return []string{"remove-tag " + l.Tag("app", "docker"), "remove-link " + l.RevisionLink("app", k.docker.Digest())}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "restore tag index",
		brk: func(t *testing.T, k *kit) {
			require.NoError(t, regstoretest.TagWithoutIndexEntry(k.s, "app", "latest"))
		},
		opts:  check.RepairOptions{RestoreTagIndex: true},
		fixed: []check.ProblemKind{check.TagNotInIndex},
		actions: func(k *kit) []string {
			return []string{"write-link " + k.s.Layout().TagIndexLink("app", "latest", k.img.Digest())}
		},
		after: func(*kit) []string { return nil },
		more: func(t *testing.T, k *kit) {
			tg, err := kitRepo(t, k.s, "app").Tag("latest")
			require.NoError(t, err)
			assert.Equal(t, []digest.Digest{k.img.Digest()}, collect(t, tg.History()), "History(app:latest)")
		},
	},
	{
		name:  "quarantine corrupt layer; pushing it again heals",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.CorruptBlob(k.s, k.l2)) },
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.BlobCorrupt},
		actions: func(k *kit) []string {
			p := k.s.Layout().BlobData(k.l2)
			return []string{"quarantine " + p + " -> " + quarantined(k.s, p)}
		},
		// Links stay: they name the right digest.
		after: func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.BlobMissing, l.LayerLink("app", k.l2)), kp(check.ReferenceMissing, l.BlobData(k.img.Digest()))}
		},
		more: func(t *testing.T, k *kit) {
			b, err := fs.ReadFile(k.s.FS(), quarantined(k.s, k.s.Layout().BlobData(k.l2)))
			require.NoError(t, err, "the quarantined data")
			assert.NotEqual(t, k.l2, digest.FromBytes(b), "is the corrupt content")
			_, err = k.s.PutBlob(regstoretest.RandomLayer(2, 64).Reader(), k.l2, -1)
			require.NoError(t, err, "PutBlob(l2 again)")
			assert.Empty(t, problemPaths(runCheck(t, k.s, false)), "Check after pushing l2 again")
		},
	},
	{
		name:  "quarantine corrupt manifest data",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.CorruptBlob(k.s, k.docker.Digest())) },
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.BlobCorrupt},
		actions: func(k *kit) []string {
			p := k.s.Layout().BlobData(k.docker.Digest())
			return []string{"quarantine " + p + " -> " + quarantined(k.s, p)}
		},
		after: func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.BlobMissing, l.RevisionLink("app", k.docker.Digest())), kp(check.BlobMissing, l.TagCurrent("app", "docker"))}
		},
	},
	{
		name: "quarantine invalid tagged manifest: tag, revision, data",
		brk: func(t *testing.T, k *kit) {
			d, err := regstoretest.InvalidManifest(k.s, "app", invalidManifest)
			require.NoError(t, err)
			putTag(t, k, "app", "bad", d)
		},
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.ManifestInvalid, check.TagUnresolvable},
		actions: func(k *kit) []string {
			l, d := k.s.Layout(), digest.FromBytes(invalidManifest)
			var out []string
			for _, p := range []string{l.Tag("app", "bad"), l.RevisionDir("app", d), l.BlobData(d)} {
				out = append(out, "quarantine "+p+" -> "+quarantined(k.s, p))
			}
			return out
		},
		after: func(*kit) []string { return nil },
		more: func(t *testing.T, k *kit) {
			l, d := k.s.Layout(), digest.FromBytes(invalidManifest)
			b, err := fs.ReadFile(k.s.FS(), quarantined(k.s, l.TagCurrent("app", "bad")))
			require.NoError(t, err, "the quarantined tag's current link")
			assert.Equal(t, d.String(), string(b))
			_, err = fs.Stat(k.s.FS(), quarantined(k.s, l.RevisionLink("app", d)))
			assert.NoError(t, err, "the quarantined revision link")
		},
	},
	{
		name: "quarantine invalid manifest of two repositories: data moves with the last",
		brk: func(t *testing.T, k *kit) {
			for _, repo := range []string{"app", "multi"} {
				_, err := regstoretest.InvalidManifest(k.s, repo, invalidManifest)
				require.NoError(t, err)
			}
		},
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.ManifestInvalid},
		actions: func(k *kit) []string {
			l, d := k.s.Layout(), digest.FromBytes(invalidManifest)
			q := func(p string) string { return "quarantine " + p + " -> " + quarantined(k.s, p) }
			return []string{q(l.RevisionDir("app", d)), "skip " + l.BlobData(d), q(l.RevisionDir("multi", d)), q(l.BlobData(d))}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "quarantine invalid manifest in one repository: the data stays for the other",
		brk: func(t *testing.T, k *kit) {
			for _, repo := range []string{"app", "multi"} {
				_, err := regstoretest.InvalidManifest(k.s, repo, invalidManifest)
				require.NoError(t, err)
			}
		},
		opts: check.RepairOptions{Quarantine: true},
		pass: func(_ *kit, p check.Problem) bool { return p.Repository == "app" },
		actions: func(k *kit) []string {
			l, d := k.s.Layout(), digest.FromBytes(invalidManifest)
			return []string{"quarantine " + l.RevisionDir("app", d) + " -> " + quarantined(k.s, l.RevisionDir("app", d)), "skip " + l.BlobData(d)}
		},
		after: func(k *kit) []string {
			return []string{kp(check.ManifestInvalid, k.s.Layout().BlobData(digest.FromBytes(invalidManifest)))}
		},
	},
	{
		// The OCI empty config "{}" is a blob that sig uses (linked in
		// app's _layers); a revision link naming it is a bad manifest, but
		// the data must stay.
		name: "quarantine a revision of a blob other manifests use: the data stays",
		brk: func(t *testing.T, k *kit) {
			_, err := regstoretest.InvalidManifest(k.s, "app", []byte("{}"))
			require.NoError(t, err)
		},
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.ManifestInvalid},
		actions: func(k *kit) []string {
			l, d := k.s.Layout(), digest.FromString("{}")
			return []string{"quarantine " + l.RevisionDir("app", d) + " -> " + quarantined(k.s, l.RevisionDir("app", d)), "skip " + l.BlobData(d)}
		},
		after: func(*kit) []string { return nil },
		more: func(t *testing.T, k *kit) {
			_, err := kitRepo(t, k.s, "app").Blob(digest.FromString("{}"))
			assert.NoError(t, err, "the empty config is still in app")
		},
	},
	{
		name: "quarantine oversize manifest",
		brk: func(t *testing.T, k *kit) {
			var err error
			k.made, err = regstoretest.OversizeManifest(k.s, "app")
			require.NoError(t, err)
		},
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.ManifestTooLarge},
		actions: func(k *kit) []string {
			l := k.s.Layout()
			var out []string
			for _, p := range []string{l.RevisionDir("app", k.made), l.BlobData(k.made)} {
				out = append(out, "quarantine "+p+" -> "+quarantined(k.s, p))
			}
			return out
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "relink layer",
		brk: func(t *testing.T, k *kit) {
			require.NoError(t, regstoretest.UnlinkReference(k.s, "app", k.img.Digest(), k.l2))
		},
		opts:    check.RepairOptions{Relink: true},
		fixed:   []check.ProblemKind{check.ReferenceUnlinked},
		actions: func(k *kit) []string { return []string{"write-link " + k.s.Layout().LayerLink("app", k.l2)} },
		after:   func(*kit) []string { return nil },
	},
	{
		name: "relink index child, needed by two indexes",
		brk: func(t *testing.T, k *kit) {
			require.NoError(t, regstoretest.UnlinkReference(k.s, "multi", k.index.Digest(), k.child2.Digest()))
		},
		opts:  check.RepairOptions{Relink: true},
		fixed: []check.ProblemKind{check.ReferenceUnlinked},
		actions: func(k *kit) []string {
			p := k.s.Layout().RevisionLink("multi", k.child2.Digest())
			return []string{"write-link " + p, "skip " + k.s.Layout().BlobData(secondIndex(k))}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "relink does not overwrite a corrupt link",
		brk:  func(t *testing.T, k *kit) { require.NoError(t, regstoretest.GarbageLink(k.s, "app", string(k.l2))) },
		opts: check.RepairOptions{Relink: true},
		actions: func(k *kit) []string {
			return []string{"skip " + k.s.Layout().BlobData(k.img.Digest())}
		},
		after: func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.LinkUnparsable, l.LayerLink("app", k.l2)), kp(check.ReferenceUnlinked, l.BlobData(k.img.Digest()))}
		},
	},
	{
		name:  "quarantine unparsable layer link; relink writes it again",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.GarbageLink(k.s, "app", string(k.l2))) },
		opts:  check.RepairOptions{Quarantine: true, Relink: true},
		fixed: []check.ProblemKind{check.LinkUnparsable, check.ReferenceUnlinked},
		actions: func(k *kit) []string {
			l := k.s.Layout()
			dir := path.Dir(l.LayerLink("app", k.l2))
			return []string{"quarantine " + dir + " -> " + quarantined(k.s, dir), "write-link " + l.LayerLink("app", k.l2)}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name:  "quarantine a tag whose current link is empty",
		brk:   func(t *testing.T, k *kit) { require.NoError(t, regstoretest.EmptyLink(k.s, "app", "docker")) },
		opts:  check.RepairOptions{Quarantine: true},
		fixed: []check.ProblemKind{check.LinkEmpty},
		actions: func(k *kit) []string {
			dir := k.s.Layout().Tag("app", "docker")
			return []string{"quarantine " + dir + " -> " + quarantined(k.s, dir)}
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "remove old temporary files",
		brk: func(t *testing.T, k *kit) {
			require.NoError(t, regstoretest.TempFile(k.s, "app", "latest"))
			require.NoError(t, regstoretest.TempFile(k.s, "app", string(k.l2)))
		},
		// Two hours from now, both files are an hour old.
		opts:  check.RepairOptions{RemoveTempFiles: true, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }},
		fixed: []check.ProblemKind{check.TempFileLeft},
		actions: func(k *kit) []string {
			var out []string
			for _, ref := range []string{string(k.l2), "latest"} {
				p, _ := regstoretest.LinkPath(k.s, "app", ref)
				out = append(out, "remove-file "+p+".0b9d8f4e-5c1a-4d7e-9a63-2f1e8c7b6a50.tmp")
			}
			return out
		},
		after: func(*kit) []string { return nil },
	},
	{
		name: "every repair at once",
		brk: func(t *testing.T, k *kit) {
			require.NoError(t, regstoretest.DanglingLink(k.s, "app", "docker"))
			require.NoError(t, regstoretest.TagWithoutIndexEntry(k.s, "app", "latest"))
			require.NoError(t, regstoretest.UnlinkReference(k.s, "multi", k.index.Digest(), k.child2.Digest()))
			require.NoError(t, regstoretest.CorruptBlob(k.s, k.child1.Digest()))
			_, err := regstoretest.InvalidManifest(k.s, "app/web", invalidManifest)
			require.NoError(t, err)
		},
		opts: check.RepairOptions{RemoveDanglingLinks: true, RestoreTagIndex: true, Quarantine: true, Relink: true},
		fixed: []check.ProblemKind{check.BlobCorrupt, check.TagNotInIndex, check.ManifestInvalid,
			check.ReferenceUnlinked, check.TagUnresolvable},
		actions: func(k *kit) []string {
			l, bad := k.s.Layout(), digest.FromBytes(invalidManifest)
			q := func(p string) string { return "quarantine " + p + " -> " + quarantined(k.s, p) }
			return []string{
				"remove-tag " + l.Tag("app", "docker"),
				"remove-link " + l.RevisionLink("app", k.docker.Digest()),
				q(l.RevisionDir("app/web", bad)),
				q(l.BlobData(bad)),
				q(l.BlobData(k.child1.Digest())),
				"write-link " + l.TagIndexLink("app", "latest", k.img.Digest()),
				"write-link " + l.RevisionLink("multi", k.child2.Digest()),
				"skip " + l.BlobData(secondIndex(k)),
			}
		},
		// child1's data was corrupt and is now missing: its revision link
		// dangles (a second pass removes it, or a push restores it).
		after: func(k *kit) []string {
			l := k.s.Layout()
			return []string{kp(check.BlobMissing, l.RevisionLink("multi", k.child1.Digest())),
				kp(check.ReferenceMissing, l.BlobData(k.index.Digest())), kp(check.ReferenceMissing, l.BlobData(k.lst.Digest()))}
		},
	},
}

// TestRepair breaks a kit tree, checks it, and repairs what Check found:
// first as a dry run, which must change nothing and announce exactly what
// the real run then does; then for real, after which Check no longer
// reports the repaired kinds and every tag that resolved before still
// resolves to the same manifest; then again with the same (now stale)
// problems, which must only skip.
func TestRepair(t *testing.T) {
	ctx := context.Background()
	for _, bk := range kitBackends {
		for _, tc := range repairCases {
			t.Run(bk.name+"/"+tc.name, func(t *testing.T) {
				k := buildKit(t, bk.load)
				tc.brk(t, k)
				var problems []check.Problem
				for _, p := range runCheck(t, k.s, false) {
					if tc.pass == nil || tc.pass(k, p) {
						problems = append(problems, p)
					}
				}
				require.NotEmpty(t, problems)
				tagsBefore := tagDigests(t, k.s)
				listing := backendtest.Listing(t, k.s.FS(), ".")

				none, err := check.Repair(ctx, k.s, problems, check.RepairOptions{})
				require.NoError(t, err)
				assert.Empty(t, none, "Repair with no repair chosen")

				dryOpts := tc.opts
				dryOpts.DryRun = true
				dry, err := check.Repair(ctx, k.s, problems, dryOpts)
				require.NoError(t, err, "Repair (dry run)")
				assert.Equal(t, listing, backendtest.Listing(t, k.s.FS(), "."), "a dry run changes nothing")

				done, err := check.Repair(ctx, k.s, problems, tc.opts)
				require.NoError(t, err, "Repair")
				for _, a := range done {
					t.Log(a.Op, a.Message)
					assert.False(t, a.DryRun)
					assert.NotEmpty(t, a.Message)
				}
				assert.Equal(t, tc.actions(k), actionLines(done), "Repair actions")
				for i := range dry {
					assert.Equal(t, dry[i].Op != check.RepairSkip, dry[i].DryRun, "dry-run action %d is marked", i)
					dry[i].DryRun = false
					if dry[i].Op != check.RepairSkip && i < len(done) {
						assert.True(t, strings.HasPrefix(dry[i].Message, "would "), "dry-run action %d says what it would do: %s", i, dry[i].Message)
						// "would remove X" against "removed X": the same words after the verb.
						assert.Equal(t, strings.Fields(done[i].Message)[1:], strings.Fields(dry[i].Message)[2:], "action %d", i)
						dry[i].Message = done[i].Message
					}
				}
				assert.Equal(t, done, dry, "the dry run announces what the real run does")

				after := runCheck(t, k.s, false)
				kinds := countKinds(after)
				for _, kind := range tc.fixed {
					assert.Zero(t, kinds[kind], "Check after Repair reports no %s", kind)
				}
				want := tc.after(k)
				slices.Sort(want)
				assert.Equal(t, want, problemPaths(after), "Check after Repair")
				assert.Equal(t, tagsBefore, tagDigests(t, k.s), "tags that resolved before still resolve")
				backendtest.Clean(t, k.s.FS(), ".")

				listing = backendtest.Listing(t, k.s.FS(), ".")
				again, err := check.Repair(ctx, k.s, problems, tc.opts)
				require.NoError(t, err, "Repair again with the stale problems")
				for _, a := range again {
					assert.Equal(t, check.RepairSkip, a.Op, "stale problem: %s", a.Message)
				}
				assert.Equal(t, listing, backendtest.Listing(t, k.s.FS(), "."), "a repeated repair changes nothing")

				if tc.more != nil {
					tc.more(t, k)
				}
			})
		}
	}
}

// TestRepairNothingByDefault: problems of every kind, and no repair chosen,
// change nothing.
func TestRepairNothingByDefault(t *testing.T) {
	k := buildKit(t, kitBackends[0].load)
	for _, tc := range brokenCases {
		if tc.name == "orphan blob" || strings.Contains(tc.name, "upload") {
			continue // they would collide with another case's changes
		}
		_ = tc.brk(k)
	}
	problems := runCheck(t, k.s, false)
	require.NotEmpty(t, problems)
	listing := backendtest.Listing(t, k.s.FS(), ".")
	actions, err := check.Repair(context.Background(), k.s, problems, check.RepairOptions{})
	require.NoError(t, err)
	assert.Empty(t, actions)
	assert.Equal(t, listing, backendtest.Listing(t, k.s.FS(), "."))
}

// TestRepairReadOnly: a dry run works on a read-only backend; a real repair
// fails with errors.ErrUnsupported, changing nothing.
func TestRepairReadOnly(t *testing.T) {
	k := buildKit(t, kitBackends[0].load)
	require.NoError(t, regstoretest.TagWithoutIndexEntry(k.s, "app", "latest"))
	problems := runCheck(t, k.s, true)
	require.Len(t, problems, 1)

	ro := fstest.MapFS{}
	for _, line := range backendtest.Listing(t, k.s.FS(), ".") {
		if name, content, ok := strings.Cut(line, "="); ok {
			ro[name] = &fstest.MapFile{Data: []byte(content)}
		}
	}
	s, err := regstore.Open(ro)
	require.NoError(t, err)
	dry, err := check.Repair(context.Background(), s, problems, check.RepairOptions{RestoreTagIndex: true, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"write-link " + s.Layout().TagIndexLink("app", "latest", k.img.Digest())}, actionLines(dry))
	_, err = check.Repair(context.Background(), s, problems, check.RepairOptions{RestoreTagIndex: true})
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "Repair on a read-only backend = %v, want ErrUnsupported", err)
}

// TestRepairCanceled: a done context stops the repair before any action.
func TestRepairCanceled(t *testing.T) {
	k := buildKit(t, kitBackends[0].load)
	require.NoError(t, regstoretest.TagWithoutIndexEntry(k.s, "app", "latest"))
	problems := runCheck(t, k.s, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	listing := backendtest.Listing(t, k.s.FS(), ".")
	actions, err := check.Repair(ctx, k.s, problems, check.RepairOptions{RestoreTagIndex: true})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, actions)
	assert.Equal(t, listing, backendtest.Listing(t, k.s.FS(), "."))
}

// noRenameFS hides every upgrade of a backend, Rename among them.
type noRenameFS struct{ regstore.WriteFS }

// TestRepairQuarantineWithoutRename: on a backend without Rename,
// quarantine moves file by file (copy, then remove), current links first,
// and removes the directories it emptied.
func TestRepairQuarantineWithoutRename(t *testing.T) {
	for _, bk := range kitBackends {
		t.Run(bk.name, func(t *testing.T) {
			k := buildKit(t, bk.load)
			d, err := regstoretest.InvalidManifest(k.s, "app", invalidManifest)
			require.NoError(t, err)
			putTag(t, k, "app", "bad", d)
			s, err := regstore.Open(noRenameFS{k.s.FS().(regstore.WriteFS)})
			require.NoError(t, err)
			_, isRename := s.FS().(regstore.RenameFS)
			require.False(t, isRename)
			tagsBefore := tagDigests(t, s)

			actions, err := check.Repair(context.Background(), s, runCheck(t, s, true), check.RepairOptions{Quarantine: true})
			require.NoError(t, err)
			l := s.Layout()
			var want []string
			for _, p := range []string{l.Tag("app", "bad"), l.RevisionDir("app", d), l.BlobData(d)} {
				want = append(want, "quarantine "+p+" -> "+quarantined(s, p))
			}
			assert.Equal(t, want, actionLines(actions))
			for _, p := range []string{l.Tag("app", "bad"), l.RevisionDir("app", d), l.BlobData(d)} {
				_, err := fs.Stat(s.FS(), p)
				assert.ErrorIs(t, err, fs.ErrNotExist, "%s is moved away", p)
			}
			for _, p := range []string{l.TagCurrent("app", "bad"), l.TagIndexLink("app", "bad", d), l.RevisionLink("app", d), l.BlobData(d)} {
				_, err := fs.Stat(s.FS(), quarantined(s, p))
				assert.NoError(t, err, "%s is in the quarantine", p)
			}
			assert.Empty(t, problemPaths(runCheck(t, s, false)))
			assert.Equal(t, tagsBefore, tagDigests(t, s))
			backendtest.Clean(t, s.FS(), ".")
		})
	}
}

// TestRepairQuarantineKeepsEarlierQuarantine: quarantining the same path
// twice never replaces what is already in the quarantine.
func TestRepairQuarantineKeepsEarlierQuarantine(t *testing.T) {
	k := buildKit(t, kitBackends[0].load)
	data := k.s.Layout().BlobData(k.l2)
	for i, want := range []string{quarantined(k.s, data), quarantined(k.s, data) + ".1"} {
		require.NoError(t, regstoretest.CorruptBlob(k.s, k.l2), "round %d", i)
		actions, err := check.Repair(context.Background(), k.s, runCheck(t, k.s, false), check.RepairOptions{Quarantine: true})
		require.NoError(t, err)
		require.Len(t, actions, 1)
		assert.Equal(t, want, actions[0].To, "round %d", i)
		// Push the content again for the next round.
		_, err = k.s.PutBlob(regstoretest.RandomLayer(2, 64).Reader(), k.l2, -1)
		require.NoError(t, err)
	}
	for _, p := range []string{quarantined(k.s, data), quarantined(k.s, data) + ".1"} {
		_, err := fs.Stat(k.s.FS(), p)
		assert.NoError(t, err, "%s kept", p)
	}
}

// ExampleStore_Repair finds a tag whose index misses its current manifest
// and restores the entry, after a dry run.
func ExampleRepair() {
	ctx := context.Background()
	s, _ := regstore.Open(regstore.NewMemFS())
	r, _ := s.Repository("app")
	if _, err := regstoretest.PushImage(r, regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(1, 16)}}, "latest"); err != nil {
		fmt.Println(err)
		return
	}
	_ = regstoretest.TagWithoutIndexEntry(s, "app", "latest")

	var problems []check.Problem
	for p, err := range check.Problems(ctx, s, check.Options{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		problems = append(problems, p)
	}
	for _, dry := range []bool{true, false} {
		actions, err := check.Repair(ctx, s, problems, check.RepairOptions{RestoreTagIndex: true, DryRun: dry})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, a := range actions {
			fmt.Println(a.Op, a.Kind, a.Repository, a.Tag, "dry run:", a.DryRun)
		}
	}
	// Output:
	// write-link tag-not-in-index app latest dry run: true
	// write-link tag-not-in-index app latest dry run: false
}

// TestRepairKeepsYoungTempFiles: a temporary file younger than the age may
// belong to a write in progress; it stays, and the action says why.
func TestRepairKeepsYoungTempFiles(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	regstoretest.Push(t, mustRepo(t, s, "app"), regstoretest.Image{}, "latest")
	require.NoError(t, regstoretest.TempFile(s, "app", "latest"))
	problems := runCheck(t, s, true)
	require.Len(t, problems, 1)
	require.Equal(t, check.TempFileLeft, problems[0].Kind)
	assert.Contains(t, problems[0].Message, "once it is an hour old", "the message says when it goes")

	for _, age := range []time.Duration{0, 3 * time.Hour} {
		actions, err := check.Repair(context.Background(), s, problems, check.RepairOptions{RemoveTempFiles: true, TempFileAge: age})
		require.NoError(t, err)
		require.Len(t, actions, 1)
		assert.Equal(t, check.RepairSkip, actions[0].Op)
		assert.Contains(t, actions[0].Message, "a write may still be using it")
		assert.Equal(t, problems, runCheck(t, s, true), "the file stays")
	}
	// An hour and a minute later it goes, and the dry run says it would.
	later := func() time.Time { return time.Now().Add(61 * time.Minute) }
	dry, err := check.Repair(context.Background(), s, problems, check.RepairOptions{RemoveTempFiles: true, Now: later, DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry, 1)
	assert.Equal(t, check.RepairRemoveFile, dry[0].Op)
	assert.True(t, strings.HasPrefix(dry[0].Message, "would remove temporary file "), dry[0].Message)
	done, err := check.Repair(context.Background(), s, problems, check.RepairOptions{RemoveTempFiles: true, Now: later})
	require.NoError(t, err)
	require.Len(t, done, 1)
	assert.True(t, strings.HasPrefix(done[0].Message, "removed temporary file "), done[0].Message)
	assert.Empty(t, runCheck(t, s, true))
}

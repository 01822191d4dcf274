package gc_test

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onBothBackends runs fn on a fresh, empty MemFS and a fresh, empty Dir.
func onBothBackends(t *testing.T, fn func(t *testing.T, w regstore.WriteFS)) {
	t.Helper()
	t.Run("MemFS", func(t *testing.T) { fn(t, regstore.NewMemFS()) })
	t.Run("Dir", func(t *testing.T) {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err, "OpenDir(t.TempDir())")
		t.Cleanup(func() { d.Close() })
		fn(t, d)
	})
}

// readOnly hides every write method of fsys.
type readOnly struct{ fs.FS }

// testUpload is an upload session to hand-build.
type testUpload struct {
	repo, id  string
	startedAt string // content of startedat; "-" for no startedat file
	mtime     time.Time
}

// putUpload writes a session as the registry's POST and PATCH do
// (startedat, data, a hash state) and then sets its directory's
// modification time.
func putUpload(t *testing.T, s *regstore.Store, u testUpload) {
	t.Helper()
	w := s.FS().(regstore.WriteFS)
	dir := s.Layout().Upload(u.repo, u.id)
	if u.startedAt != "-" {
		backendtest.Put(t, w, dir+"/startedat", u.startedAt)
	}
	backendtest.Put(t, w, dir+"/data", "partial")
	backendtest.Put(t, w, dir+"/hashstates/sha256/7", "sha\x03state")
	c, ok := w.(regstore.ChtimesFS)
	require.True(t, ok, "%T has no Chtimes", w)
	require.NoError(t, c.Chtimes(dir, u.mtime), "Chtimes(%s)", dir)
	fi, err := fs.Stat(w, dir)
	require.NoError(t, err)
	require.True(t, fi.ModTime().Equal(u.mtime), "directory ModTime after Chtimes = %v, want %v", fi.ModTime(), u.mtime)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestPurgeUploads(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	const age = 24 * time.Hour
	old, young, future := now.Add(-48*time.Hour), now.Add(-time.Hour), now.Add(time.Hour)
	const uuid = "5f2bd6a0-2f0b-4c41-9d7d-2a7c0c1f5e11"
	cases := []struct {
		name string
		up   testUpload
		want bool // purged
	}{
		{"old startedat, fresh dir", testUpload{"app", "a1", rfc3339(old), now}, true},
		{"young startedat, old dir", testUpload{"app", "a2", rfc3339(young), old}, false},
		{"startedat in the future", testUpload{"app", "a3", rfc3339(future), old}, false},
		{"startedat exactly at the cutoff", testUpload{"app", "a4", rfc3339(now.Add(-age)), old}, false},
		{"startedat a second past the cutoff", testUpload{"app", "a5", rfc3339(now.Add(-age - time.Second)), now}, true},
		{"startedat with offset", testUpload{"app", "a6", old.In(time.FixedZone("x", 3600)).Format(time.RFC3339), now}, true},
		{"no startedat, old dir", testUpload{"app", "b1", "-", old}, true},
		{"no startedat, young dir", testUpload{"app", "b2", "-", young}, false},
		{"unreadable startedat, old dir", testUpload{"app", "b3", "last tuesday", old}, true},
		{"unreadable startedat, young dir", testUpload{"app", "b4", "last tuesday", now}, false},
		{"startedat with newline, old dir", testUpload{"app", "b5", rfc3339(young) + "\n", old}, true},
		{"uuid id", testUpload{"app", uuid, rfc3339(old), now}, true},
		{"non-uuid route id", testUpload{"app", "x_Y=z-1.2", rfc3339(old), now}, true},
		{"invalid id: leading dot", testUpload{"app", ".hidden", rfc3339(old), old}, false},
		{"invalid id: dot dot", testUpload{"app", "a..b", rfc3339(old), old}, false},
		{"nested repository", testUpload{"app/sub", "c1", rfc3339(old), now}, true},
		{"nested repository, young", testUpload{"app/sub", "c2", rfc3339(young), now}, false},
		{"repository without _manifests", testUpload{"first/push", "d1", rfc3339(old), now}, true},
		{"repository without _manifests, young", testUpload{"first/push", "d2", rfc3339(young), old}, false},
		{"invalid repository name", testUpload{"Bad", "e1", rfc3339(old), old}, false},
	}
	for _, dryRun := range []bool{false, true} {
		t.Run(map[bool]string{false: "purge", true: "dry-run"}[dryRun], func(t *testing.T) {
			onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s, err := regstore.Open(w)
				require.NoError(t, err)
				// Repositories app and app/sub have manifests; first/push does not.
				for _, repo := range []string{"app", "app/sub"} {
					backendtest.Put(t, w, s.Layout().Tags(repo)+"/keep/current/link", "sha256:"+strings.Repeat("a", 64))
				}
				var wantIDs []string
				for _, c := range cases {
					putUpload(t, s, c.up)
					if c.want {
						wantIDs = append(wantIDs, c.up.repo+"/"+c.up.id)
					}
				}
				before := backendtest.Listing(t, w, ".")

				got, err := gc.PurgeUploads(context.Background(), s, gc.PurgeOptions{OlderThan: age, DryRun: dryRun, Now: func() time.Time { return now }})
				require.NoError(t, err, "PurgeUploads")
				var gotIDs []string
				for _, u := range got {
					gotIDs = append(gotIDs, u.Repository.Name()+"/"+u.ID)
				}
				assert.ElementsMatch(t, wantIDs, gotIDs, "PurgeUploads() sessions")
				// Walk order: app, app/sub, first/push; ids sorted within.
				assert.True(t, slices.IsSortedFunc(gotIDs, func(a, b string) int {
					ra, _, _ := strings.Cut(a, "/"+lastComponent(a))
					rb, _, _ := strings.Cut(b, "/"+lastComponent(b))
					if ra != rb {
						return strings.Compare(ra, rb)
					}
					return strings.Compare(lastComponent(a), lastComponent(b))
				}), "PurgeUploads() order = %v", gotIDs)

				for _, c := range cases {
					if !c.want {
						continue
					}
					i := slices.Index(gotIDs, c.up.repo+"/"+c.up.id)
					if !assert.GreaterOrEqual(t, i, 0, c.name) {
						continue
					}
					assert.Equal(t, s.Layout().Upload(c.up.repo, c.up.id), got[i].Path(), c.name)
					if c.up.startedAt == "-" {
						assert.True(t, got[i].StartedAt.IsZero(), "%s: StartedAt = %v, want zero", c.name, got[i].StartedAt)
					}
				}

				after := backendtest.Listing(t, w, ".")
				if dryRun {
					assert.Equal(t, before, after, "dry run changed the tree")
					return
				}
				// Exactly the purged session directories are gone.
				var want []string
				for _, p := range before {
					gone := false
					for _, u := range got {
						gone = gone || strings.HasPrefix(p, u.Path()+"/")
					}
					if !gone {
						want = append(want, p)
					}
				}
				assert.Equal(t, want, after, "tree after purge")
				for _, repo := range []string{"app", "app/sub", "first/push"} {
					fi, err := fs.Stat(w, s.Layout().Uploads(repo))
					if assert.NoError(t, err, "_uploads of %s is kept", repo) {
						assert.True(t, fi.IsDir())
					}
				}

				// A second purge finds nothing more.
				again, err := gc.PurgeUploads(context.Background(), s, gc.PurgeOptions{OlderThan: age, Now: func() time.Time { return now }})
				require.NoError(t, err)
				assert.Empty(t, again, "second PurgeUploads()")
			})
		})
	}
}

func lastComponent(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// TestPurgeUploadsDirMtime checks that ChtimesFS sets the modification time
// of a directory on both backends, which PurgeUploads relies on in tests.
func TestPurgeUploadsDirMtime(t *testing.T) {
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		backendtest.Put(t, w, "d/f", "x")
		when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		require.NoError(t, w.(regstore.ChtimesFS).Chtimes("d", when))
		fi, err := fs.Stat(w, "d")
		require.NoError(t, err)
		assert.True(t, fi.ModTime().Equal(when), "Stat(d).ModTime() = %v, want %v", fi.ModTime(), when)
		entries, err := fs.ReadDir(w, ".")
		require.NoError(t, err)
		require.Len(t, entries, 1)
		info, err := entries[0].Info()
		require.NoError(t, err)
		assert.True(t, info.ModTime().Equal(when), "ReadDir(.)[0].Info().ModTime() = %v, want %v", info.ModTime(), when)
	})
}

func TestPurgeUploadsErrors(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	oldStart := rfc3339(now.Add(-48 * time.Hour))
	withUpload := func(t *testing.T) fs.FS {
		m := regstore.NewMemFS()
		s, err := regstore.Open(m)
		require.NoError(t, err)
		putUpload(t, s, testUpload{"app", "u1", oldStart, now})
		return m
	}
	readOnlyFS := func(*testing.T) fs.FS {
		return fstest.MapFS{regstore.DefaultLayoutRoot + "/repositories/app/_uploads/u1/startedat": {Data: []byte(oldStart)}}
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name    string
		fsys    func(t *testing.T) fs.FS
		ctx     context.Context
		opts    gc.PurgeOptions
		want    error // nil: no error
		wantLen int
	}{
		{"zero age", withUpload, context.Background(), gc.PurgeOptions{}, fs.ErrInvalid, 0},
		{"zero age dry run", withUpload, context.Background(), gc.PurgeOptions{DryRun: true}, fs.ErrInvalid, 0},
		{"negative age", withUpload, context.Background(), gc.PurgeOptions{OlderThan: -time.Hour}, fs.ErrInvalid, 0},
		{"read-only", readOnlyFS, context.Background(), gc.PurgeOptions{OlderThan: time.Hour}, errors.ErrUnsupported, 0},
		{"read-only dry run", readOnlyFS, context.Background(), gc.PurgeOptions{OlderThan: time.Hour, DryRun: true}, nil, 1},
		{"wrapped read-only", func(t *testing.T) fs.FS { return readOnly{withUpload(t)} }, context.Background(), gc.PurgeOptions{OlderThan: time.Hour}, errors.ErrUnsupported, 0},
		{"canceled", withUpload, canceled, gc.PurgeOptions{OlderThan: time.Hour}, context.Canceled, 0},
		{"empty store", func(*testing.T) fs.FS { return regstore.NewMemFS() }, context.Background(), gc.PurgeOptions{OlderThan: time.Hour}, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := c.fsys(t)
			s, err := regstore.Open(fsys)
			require.NoError(t, err)
			before := backendtest.Listing(t, fsys, ".")
			c.opts.Now = func() time.Time { return now }
			got, err := gc.PurgeUploads(c.ctx, s, c.opts)
			if c.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, c.want, "PurgeUploads() error")
				var e *regstore.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, "purge uploads", e.Op)
			}
			assert.Len(t, got, c.wantLen, "PurgeUploads() sessions")
			if c.opts.DryRun || c.want != nil {
				assert.Equal(t, before, backendtest.Listing(t, fsys, "."), "tree changed")
			}
		})
	}
}

// vanishFS removes the upload session victim right after listing the
// _uploads directory that holds it, as a live registry does when the
// upload completes while PurgeUploads runs. Its directory entries stat
// lazily, as [fs.DirEntry] allows: Info of the removed session fails with
// an error wrapping fs.ErrNotExist.
type vanishFS struct {
	fullBackend
	victim string
}

func (v *vanishFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := v.fullBackend.ReadDir(name)
	if err != nil {
		return nil, err
	}
	if v.victim != "" && path.Dir(v.victim) == name {
		if err := v.fullBackend.RemoveAll(v.victim); err != nil {
			return nil, err
		}
	}
	lazy := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		lazy[i] = lazyEntry{e, v.fullBackend, path.Join(name, e.Name())}
	}
	return lazy, nil
}

type lazyEntry struct {
	fs.DirEntry
	fsys fs.StatFS
	path string
}

func (e lazyEntry) Info() (fs.FileInfo, error) { return e.fsys.Stat(e.path) }

func TestPurgeUploadsSessionCompletesMeanwhile(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	onBothBackends(t, func(t *testing.T, w regstore.WriteFS) {
		v := &vanishFS{fullBackend: w.(fullBackend)}
		s, err := regstore.Open(v)
		require.NoError(t, err)
		for _, id := range []string{"u1", "u2", "u3"} {
			putUpload(t, s, testUpload{"app", id, rfc3339(now.Add(-48 * time.Hour)), now})
		}
		v.victim = s.Layout().Upload("app", "u2")
		got, err := gc.PurgeUploads(t.Context(), s, gc.PurgeOptions{OlderThan: time.Hour, Now: func() time.Time { return now }})
		require.NoError(t, err, "PurgeUploads while a session completes")
		var ids []string
		for _, u := range got {
			ids = append(ids, u.ID)
		}
		assert.Contains(t, ids, "u1")
		assert.Contains(t, ids, "u3")
		entries, err := fs.ReadDir(w, s.Layout().Uploads("app"))
		require.NoError(t, err)
		assert.Empty(t, entries, "sessions left")
	})
}

package check_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLink writes a link by its layout path.
func writeLink(s *regstore.Store, p string, d digest.Digest) error {
	w, err := s.Writer()
	if err != nil {
		return err
	}
	return regstore.WriteLink(w, p, d)
}

// copyRepoLinks writes every link of repository from again below the
// directory of name (which need not be a valid name), by layout paths.
func copyRepoLinks(s *regstore.Store, from, name string) error {
	w, err := s.Writer()
	if err != nil {
		return err
	}
	src, dst := s.Layout().Repository(from), s.Layout().Repository(name)
	var paths []string
	err = regstore.WalkFiles(s.FS(), src, func(p string, _ fs.FileInfo) error {
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range paths {
		d, err := regstore.ReadLink(s.FS(), p)
		if err != nil {
			return err
		}
		if err := regstore.WriteLink(w, dst+strings.TrimPrefix(p, src), d); err != nil {
			return err
		}
	}
	return nil
}

// dirRoot is the directory a Dir kit was loaded into.
func dirRoot(k *kit) string { return k.s.FS().(*regstore.Dir).Name() }

// dirBrokenCases are broken states only a directory tree can have:
// symbolic links. Check reports the link, and then judges what it stands
// for (the registry follows it).
var dirBrokenCases = []brokenCase{
	{"repository directory that is a symbolic link to another",
		func(k *kit) error {
			p := filepath.Join(dirRoot(k), filepath.FromSlash(k.s.Layout().Repository("team")))
			if err := os.MkdirAll(p, 0o777); err != nil {
				return err
			}
			return os.Symlink("../app", filepath.Join(p, "old"))
		},
		func(k *kit) []string {
			return []string{kp(check.SymlinkInTree, k.s.Layout().Repository("team/old"))}
		}},
	{"blob data that is a symbolic link leaving the root",
		func(k *kit) error {
			p := filepath.Join(dirRoot(k), filepath.FromSlash(k.s.Layout().BlobData(k.l3)))
			outside := filepath.Join(filepath.Dir(dirRoot(k)), "outside-"+filepath.Base(dirRoot(k)))
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(outside, raw, 0o666); err != nil {
				return err
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink(outside, p)
		},
		func(k *kit) []string {
			p := k.s.Layout().BlobData(k.l3)
			return []string{kp(check.SymlinkInTree, p), kp(check.BlobUnreadable, p)}
		}},
}

// Item 2 and 4: what only a directory tree can hold is reported, exactly.
func TestCheckFindsDirOnlyKinds(t *testing.T) {
	for _, tc := range dirBrokenCases {
		t.Run(tc.name, func(t *testing.T) {
			k := buildKit(t, kitBackends[1].load)
			require.Empty(t, runCheck(t, k.s, false), "Check on the clean kit tree")
			require.NoError(t, tc.brk(k), "breaking the tree")
			want := tc.wantf(k)
			slices.Sort(want)
			assert.Equal(t, want, problemPaths(runCheck(t, k.s, false)), "Check (full)")
		})
	}
}

// eioFS fails every read of one file with an I/O error.
type eioFS struct {
	*regstore.MemFS
	bad string
}

type eioFile struct{ fs.File }

func (eioFile) Read([]byte) (int, error) { return 0, &fs.PathError{Op: "read", Err: syscall.EIO} }

func (f *eioFS) Open(name string) (fs.File, error) {
	file, err := f.MemFS.Open(name)
	if err == nil && name == f.bad {
		return eioFile{file}, nil
	}
	return file, err
}

func (f *eioFS) ReadFile(name string) ([]byte, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EIO}
	}
	return f.MemFS.ReadFile(name)
}

// Item 4: blob data that cannot be read is reported by the re-hash (it
// used to be dropped: "no problems found", exit 0).
func TestCheckReportsUnreadableBlob(t *testing.T) {
	k := buildKit(t, kitBackends[0].load)
	bad := k.s.Layout().BlobData(k.l2)
	s, err := regstore.Open(&eioFS{MemFS: k.s.FS().(*regstore.MemFS), bad: bad})
	require.NoError(t, err)
	var got []check.Problem
	for p, err := range check.Problems(context.Background(), s, check.Options{}) {
		require.NoError(t, err)
		got = append(got, p)
	}
	require.Len(t, got, 1, "%v", got)
	assert.Equal(t, check.BlobUnreadable, got[0].Kind)
	assert.Equal(t, bad, got[0].Path)
	assert.Contains(t, got[0].Message, syscall.EIO.Error())
}

// Item 9: data a collection moved aside that no journal names is put back
// by the repair before anything is removed; the dangling links beside it
// are never removed, even without restore-gc-data.
func TestRepairRestoresDataMovedAside(t *testing.T) {
	for _, bk := range kitBackends {
		t.Run(bk.name, func(t *testing.T) {
			k := buildKit(t, bk.load)
			w, err := k.s.Writer()
			require.NoError(t, err)
			l := k.s.Layout()
			require.NoError(t, regstore.Rename(w, l.BlobData(k.l2), l.BlobDataAside(k.l2)))
			problems := runCheck(t, k.s, true)
			var aside *check.Problem
			for i, p := range problems {
				if p.Kind == check.GCInterrupted {
					aside = &problems[i]
				}
			}
			require.NotNil(t, aside, "%v", problemPaths(problems))
			assert.Contains(t, aside.Message, "no journal names")

			// Removing dangling links alone leaves the link: its data is
			// only aside.
			acts, err := check.Repair(context.Background(), k.s, problems, check.RepairOptions{RemoveDanglingLinks: true})
			require.NoError(t, err)
			for _, a := range acts {
				assert.NotEqual(t, check.RepairRemoveLink, a.Op, a.Message)
				assert.NotEqual(t, check.RepairRemoveTag, a.Op, a.Message)
			}
			// Everything: the data goes back first, and nothing is removed.
			all := check.RepairOptions{RemoveDanglingLinks: true, RestoreTagIndex: true, Quarantine: true, Relink: true, RestoreGCData: true}
			acts, err = check.Repair(context.Background(), k.s, problems, all)
			require.NoError(t, err)
			require.NotEmpty(t, acts)
			assert.Equal(t, check.RepairRestore, acts[0].Op, acts[0].Message)
			for _, a := range acts {
				assert.NotEqual(t, check.RepairRemoveLink, a.Op, a.Message)
			}
			assert.Empty(t, runCheck(t, k.s, false), "the tree is clean again")
		})
	}
}

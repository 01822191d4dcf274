package regstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Symbolic links inside the layout. The registry's filesystem driver
// follows them everywhere; a mutation of regstore never does: with
// repositories/team/old a link to app, deleting team/old would otherwise
// delete team/app's tags. Mutations that remove or move (DeleteRepository,
// MoveRepository, Tag.Delete, Tag.Set, DeleteManifest, UnlinkBlob) refuse,
// changing nothing, with an error wrapping [ErrSymlink] when the path they
// change passes through a symbolic link below the layout root, or when one
// lies inside what they remove. Symbolic links above the layout root are
// the operator's (a data disk mounted through a link) and are not judged
// here. Backends without symbolic links ([fs.ReadLinkFS] not implemented,
// as MemFS and object stores) cost nothing.

// refuseSymlink returns an error wrapping ErrSymlink when a component of
// p below the layout root is a symbolic link. Components that do not exist
// end the check.
func (s *Store) refuseSymlink(p string) error {
	if _, ok := s.fsys.(fs.ReadLinkFS); !ok {
		return nil
	}
	root, rel := s.layout.Root(), p
	cur := ""
	if root != "." {
		var ok bool
		if rel, ok = strings.CutPrefix(p, root+"/"); !ok {
			return nil
		}
		cur = root
	}
	for c := range strings.SplitSeq(rel, "/") {
		cur = path.Join(cur, c)
		fi, err := fs.Lstat(s.fsys, cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s", ErrSymlink, cur)
		}
	}
	return nil
}

// refuseSymlinks is refuseSymlink for each path and for everything below
// each (not followed), as a removal of those trees would meet it.
func (s *Store) refuseSymlinks(paths ...string) error {
	if _, ok := s.fsys.(fs.ReadLinkFS); !ok {
		return nil
	}
	for _, p := range paths {
		if err := s.refuseSymlink(p); err != nil {
			return err
		}
		err := fs.WalkDir(s.fsys, p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				if q == p && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%w: %s", ErrSymlink, q)
			}
			return nil
		})
		if err != nil && err != fs.SkipAll {
			return err
		}
	}
	return nil
}

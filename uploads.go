package regstore

import (
	"errors"
	"io/fs"
	"iter"
	"path"
	"strings"
	"time"
)

// StartTime is the time an upload's age is measured from: its startedat,
// or its directory's modification time when startedat is missing or
// unreadable.
func (u *Upload) StartTime() time.Time {
	if !u.StartedAt.IsZero() {
		return u.StartedAt
	}
	return u.ModTime
}

// Uploads yields every upload session of the store, repository by
// repository (see [Repository.Uploads] for the order within one), including
// the sessions of repositories that have no _manifests yet (an abandoned
// first push, invisible to [Store.Repositories]). Repositories are found by
// the walk described below.
func (s *Store) Uploads() iter.Seq2[*Upload, error] {
	return func(yield func(*Upload, error) bool) {
		for r, err := range s.uploadRepositories() {
			if err != nil {
				yield(nil, err)
				return
			}
			for u, err := range r.Uploads() {
				if !yield(u, err) || err != nil {
					return
				}
			}
		}
	}
}

// uploadRepositories yields the repositories that have an _uploads
// directory, whether or not they have _manifests, in a pre-order walk of
// repositories/ with each directory's entries sorted by name. Directories
// whose name starts with "_" are not entered, and paths that are not valid
// repository names are skipped.
func (s *Store) uploadRepositories() iter.Seq2[*Repository, error] {
	return func(yield func(*Repository, error) bool) {
		root := s.layout.Repositories()
		var walk func(dir string, comps []string) bool
		walk = func(dir string, comps []string) bool {
			entries, err := fs.ReadDir(s.fsys, dir)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					// Missing root: an empty store. A subdirectory
					// removed during the walk: nothing to purge there.
					return true
				}
				yield(nil, &Error{Op: "purge uploads", Path: dir, Err: err})
				return false // an error ends the sequence
			}
			for _, e := range entries {
				name := e.Name()
				switch {
				case !e.IsDir():
				case name == "_uploads":
					repo := strings.Join(comps, "/")
					if ValidateName(repo) != nil {
						continue
					}
					if !yield(&Repository{s: s, name: repo}, nil) {
						return false
					}
				case strings.HasPrefix(name, "_"):
				default:
					if !walk(path.Join(dir, name), append(comps[:len(comps):len(comps)], name)) {
						return false
					}
				}
			}
			return true
		}
		walk(root, nil)
	}
}

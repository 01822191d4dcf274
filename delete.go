package regstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/opencontainers/go-digest"
)

// DeleteRepository removes the repository name: its tags, manifest
// revisions, _layers links and upload sessions. The registry has no API
// for this (its Vacuum.RemoveRepository is not routed); afterwards the
// registry no longer lists the repository in its catalog, and every pull
// from it is "unknown".
//
// Only what belongs to name goes. A nested repository (a/b/c inside
// repositories/a/b/, beside a/b's own _manifests) is untouched and stays
// fully resolvable, and so are the repositories above it (a). Blob data is
// shared by all repositories and stays: [gc.Mark] frees what nothing
// references any more.
//
// Pointers go before what they point at, so a reader that races the delete
// never follows a link to something missing: first every tag (each as
// [Tag.Delete]: current link, then the tag directory), then the revision
// links, then _layers, then _uploads, then the _manifests directory itself,
// and last the repository directory, only if it is now empty (it is not
// when nested repositories live below it), and then each parent directory
// below repositories/ that is left empty, as an object store would show
// it. Nothing is locked: a push into name that runs at the same time may
// leave some of its files behind.
//
// A repository exists here when its directory holds _manifests, _layers or
// _uploads, so the remains of an abandoned first push (links and uploads
// but no _manifests, not listed by the catalog) can be removed too. A
// missing repository is an error wrapping [fs.ErrNotExist], an invalid name
// one wrapping [ErrInvalidName], a read-only backend one wrapping
// [errors.ErrUnsupported], and a symbolic link on the repository's path or
// inside it one wrapping [ErrSymlink] (the registry follows links; a delete
// through one would remove another repository's data); nothing is changed
// then.
func (s *Store) DeleteRepository(name string) error {
	const op = "delete repository"
	r, err := s.Repository(name)
	if err != nil {
		return withOp(err, op)
	}
	w, err := s.writer(op, name, "")
	if err != nil {
		return err
	}
	l := s.layout
	if err := s.refuseSymlinks(l.Manifests(name), l.Layers(name), l.Uploads(name)); err != nil {
		return r.err(op, "", l.Repository(name), err)
	}
	exists, err := r.hasContent()
	if err != nil {
		return r.err(op, "", s.layout.Repository(name), err)
	}
	if !exists {
		return r.err(op, "", s.layout.Repository(name), fmt.Errorf("no _manifests, _layers or _uploads: %w", fs.ErrNotExist))
	}
	return r.deleteContent(w, op)
}

// deleteContent removes everything of the repository, pointers first, and
// then its directory and empty parents.
func (r *Repository) deleteContent(w WriteFS, op string) error {
	l := r.s.layout
	var tags []*Tag
	for t, err := range r.Tags() {
		if err != nil {
			return err
		}
		tags = append(tags, t)
	}
	for _, t := range tags {
		if err := t.Delete(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	err := WalkLinks(r.s.fsys, l.Revisions(r.name), func(p string, _ digest.Digest) error {
		return Remove(w, p)
	})
	if err != nil {
		return r.err(op, "", l.Revisions(r.name), err)
	}
	for _, dir := range []string{l.Layers(r.name), l.Uploads(r.name), l.Manifests(r.name)} {
		if err := RemoveAll(w, dir); err != nil {
			return r.err(op, "", dir, err)
		}
	}
	// The repository directory and the parents it leaves empty, up to
	// repositories/. A directory that is not empty (nested repositories,
	// or a concurrent writer) ends the climb.
	for dir := l.Repository(r.name); dir != l.Repositories(); dir = path.Dir(dir) {
		err := w.Remove(dir)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return r.err(op, "", dir, err)
		}
	}
	return nil
}

// hasContent reports whether the repository's directory holds _manifests,
// _layers or _uploads.
func (r *Repository) hasContent() (bool, error) {
	l := r.s.layout
	for _, dir := range []string{l.Manifests(r.name), l.Layers(r.name), l.Uploads(r.name)} {
		_, err := fs.Stat(r.s.fsys, dir)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// MoveRepository renames the repository from to to: it copies from's links
// to to, then deletes from with [Store.DeleteRepository]. No blob data is
// copied or moved; both names share it while the move runs.
//
// The links are written bottom-up, as a push would write them, so to never
// shows a pointer to something missing: the _layers links (verbatim,
// including alias links of other algorithms), then the revision links, then
// each tag's index entries, then each tag's current link. The links are read
// before anything is written, so a corrupt one (an error wrapping
// [ErrCorruptLink]) changes nothing. Dangling links are copied as they are.
//
// What is not moved: nested repositories of from (a/b/c stays when a/b
// moves), upload sessions (a client's upload is bound to the name it
// started under; they are deleted with from), signature links of registry
// 2.4 and older, and tag directories whose name is not a valid tag. The new
// links are new files, so [gc.Mark]'s grace window protects them.
//
// from must exist (as for DeleteRepository; else an error wrapping
// [fs.ErrNotExist]) and to must not: a to that holds _manifests, _layers or
// _uploads is an error wrapping [fs.ErrExist]. Invalid names are errors
// wrapping [ErrInvalidName], a read-only backend one wrapping
// [errors.ErrUnsupported]. Nothing is changed on these errors; if writing to
// to fails midway, what was written there is removed again. Nothing is
// locked: a push into from that runs during the move may be lost.
func (s *Store) MoveRepository(from, to string) error {
	const op = "move repository"
	src, err := s.Repository(from)
	if err != nil {
		return withOp(err, op)
	}
	dst, err := s.Repository(to)
	if err != nil {
		return withOp(err, op)
	}
	w, err := s.writer(op, from, "")
	if err != nil {
		return err
	}
	l := s.layout
	if err := s.refuseSymlinks(l.Manifests(from), l.Layers(from), l.Uploads(from)); err != nil {
		return src.err(op, "", l.Repository(from), err)
	}
	if err := s.refuseSymlink(l.Repository(to)); err != nil {
		return dst.err(op, "", l.Repository(to), err)
	}
	if ok, err := src.hasContent(); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("no _manifests, _layers or _uploads: %w", fs.ErrNotExist)
		}
		return src.err(op, "", s.layout.Repository(from), err)
	}
	if ok, err := dst.hasContent(); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("destination %s already holds a repository: %w", to, fs.ErrExist)
		}
		return dst.err(op, "", s.layout.Repository(to), err)
	}

	links, err := src.linksToMove(dst)
	if err != nil {
		return err
	}
	for i, c := range links {
		if err := WriteLink(w, c.dst, c.target); err != nil {
			err = src.err(op, "", c.dst, err)
			if i > 0 {
				err = errors.Join(err, dst.deleteContent(w, op))
			}
			return err
		}
	}
	return s.DeleteRepository(from)
}

// linkCopy is one link to write: target at dst.
type linkCopy struct {
	dst    string
	target digest.Digest
}

// linksToMove reads every link of r that [Store.MoveRepository] copies and
// returns them with their paths in dst, in the order they are to be written.
func (r *Repository) linksToMove(dst *Repository) ([]linkCopy, error) {
	const op = "move repository"
	l := r.s.layout
	var out []linkCopy
	collect := func(dir string, dstPath func(digest.Digest) string) error {
		err := WalkLinks(r.s.fsys, dir, func(p string, d digest.Digest) error {
			target, err := ReadLink(r.s.fsys, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a directory left by a delete
			}
			if err != nil {
				return r.err(op, d.String(), p, err)
			}
			out = append(out, linkCopy{dst: dstPath(d), target: target})
			return nil
		})
		var e *Error
		if err != nil && !errors.As(err, &e) {
			err = r.err(op, "", dir, err)
		}
		return err
	}
	if err := collect(l.Layers(r.name), func(d digest.Digest) string { return l.LayerLink(dst.name, d) }); err != nil {
		return nil, err
	}
	if err := collect(l.Revisions(r.name), func(d digest.Digest) string { return l.RevisionLink(dst.name, d) }); err != nil {
		return nil, err
	}
	var tags []*Tag
	for t, err := range r.Tags() {
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	for _, t := range tags {
		if err := collect(l.TagIndex(r.name, t.name), func(d digest.Digest) string { return l.TagIndexLink(dst.name, t.name, d) }); err != nil {
			return nil, err
		}
	}
	for _, t := range tags {
		p := l.TagCurrent(r.name, t.name)
		d, err := ReadLink(r.s.fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a tag directory with no current link
		}
		if err != nil {
			return nil, r.err(op, t.name, p, err)
		}
		out = append(out, linkCopy{dst: l.TagCurrent(dst.name, t.name), target: d})
	}
	return out, nil
}

// withOp returns err with its operation renamed to op when it is an
// [*Error] (a validation error from a handle constructor).
func withOp(err error, op string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Op = op
	}
	return err
}

package regstore

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Tag is one tag of a repository: the directory
// _manifests/tags/<tag>/ with its current link and its index (history).
// It is a name, validated; it does not say whether the tag exists.
type Tag struct {
	r    *Repository
	name string
}

// Tag returns the tag name of the repository. The name must satisfy
// [ValidateTag]. No I/O is done.
func (r *Repository) Tag(name string) (*Tag, error) {
	if err := ValidateTag(name); err != nil {
		return nil, r.err("tag", name, "", err)
	}
	return &Tag{r: r, name: name}, nil
}

// Name is the tag's name.
func (t *Tag) Name() string { return t.name }

// Repository is the repository the tag belongs to.
func (t *Tag) Repository() *Repository { return t.r }

// Digest reads the tag's current link: the digest it points at. It does not
// check that the manifest is there (see [Tag.Resolve]). A tag without a
// current link is an error wrapping [fs.ErrNotExist].
func (t *Tag) Digest() (digest.Digest, error) {
	p := t.r.s.layout.TagCurrent(t.r.name, t.name)
	d, err := ReadLink(t.r.s.fsys, p)
	if err != nil {
		return "", t.r.err("resolve tag", t.name, p, err)
	}
	return d, nil
}

// Resolve returns the manifest the tag points at, as a pull by tag does: the
// current link, then the revision link, then the data. A tag whose manifest
// is no longer in the repository is an error wrapping [fs.ErrNotExist].
func (t *Tag) Resolve() (*Manifest, error) {
	d, err := t.Digest()
	if err != nil {
		return nil, err
	}
	return t.r.Manifest(d)
}

// Set points the tag at manifest d, which must be in the repository: it
// writes the tag's index entry for d, then its current link, as the
// registry does. Earlier index entries are kept.
func (t *Tag) Set(d digest.Digest) error {
	w, err := t.r.s.writer("set tag", t.r.name, t.name)
	if err != nil {
		return err
	}
	dir := t.r.s.layout.Tag(t.r.name, t.name)
	if err := t.r.s.refuseSymlink(dir); err != nil {
		return t.r.err("set tag", t.name, dir, err)
	}
	if _, err := t.r.Manifest(d); err != nil {
		return err
	}
	return t.r.setTag(w, t.name, d)
}

// setTag writes the index entry, then the current link.
func (r *Repository) setTag(w WriteFS, tag string, d digest.Digest) error {
	for _, p := range []string{r.s.layout.TagIndexLink(r.name, tag, d), r.s.layout.TagCurrent(r.name, tag)} {
		if err := WriteLink(w, p, d); err != nil {
			return r.err("set tag", tag, p, err)
		}
	}
	return nil
}

// History yields the digests the tag's index records (every manifest it
// was ever set to, unless pruned), in lexical order of their paths. Entries
// whose link is missing are skipped; a corrupt one ends the sequence with an
// error wrapping [ErrCorruptLink]. A tag with no index yields nothing.
func (t *Tag) History() iter.Seq2[digest.Digest, error] {
	return t.r.links(t.r.s.layout.TagIndex(t.r.name, t.name), "tag history", false)
}

// Delete removes the tag as the v3 registry's DELETE by tag does: the whole
// tag directory, index included. Its current link goes first, so the tag
// never resolves to a partly deleted state. A missing tag is an error
// wrapping [fs.ErrNotExist]; a symbolic link on the tag's path or inside it
// one wrapping [ErrSymlink], and nothing is removed.
func (t *Tag) Delete() error {
	w, err := t.r.s.writer("delete tag", t.r.name, t.name)
	if err != nil {
		return err
	}
	dir := t.r.s.layout.Tag(t.r.name, t.name)
	if err := t.r.s.refuseSymlinks(dir); err != nil {
		return t.r.err("delete tag", t.name, dir, err)
	}
	if _, err := fs.Stat(t.r.s.fsys, dir); err != nil {
		return t.r.err("delete tag", t.name, dir, err)
	}
	if err := Remove(w, t.r.s.layout.TagCurrent(t.r.name, t.name)); err != nil {
		return t.r.err("delete tag", t.name, dir, err)
	}
	if err := RemoveAll(w, dir); err != nil {
		return t.r.err("delete tag", t.name, dir, err)
	}
	return nil
}

// indexed reports whether the tag's index records manifest d.
func (t *Tag) indexed(d digest.Digest) bool {
	_, err := fs.Stat(t.r.s.fsys, t.r.s.layout.TagIndexEntry(t.r.name, t.name, d))
	return err == nil
}

// Tags yields the repository's tags in sorted order, as the v3 registry
// lists them: every directory below _manifests/tags, whether or not it has
// a current link. Names that are not valid tags are skipped.
func (r *Repository) Tags() iter.Seq2[*Tag, error] {
	return func(yield func(*Tag, error) bool) {
		dir := r.s.layout.Tags(r.name)
		entries, err := fs.ReadDir(r.s.fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(nil, r.err("list tags", "", dir, err))
			return
		}
		for _, e := range entries {
			if !e.IsDir() || ValidateTag(e.Name()) != nil {
				continue
			}
			if !yield(&Tag{r: r, name: e.Name()}, nil) {
				return
			}
		}
	}
}

// links yields the digests of the link files at dir/<alg>/<hex>/link, in
// lexical order. With resolve, only links whose target data exists are
// yielded (the registry's enumeration); otherwise every readable link.
// A corrupt link ends the sequence with an error.
func (r *Repository) links(dir, op string, resolve bool) iter.Seq2[digest.Digest, error] {
	return func(yield func(digest.Digest, error) bool) {
		err := WalkLinks(r.s.fsys, dir, func(p string, _ digest.Digest) error {
			target, err := ReadLink(r.s.fsys, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return r.err(op, "", p, err)
			}
			if resolve {
				if _, err := r.s.statBlob(target); errors.Is(err, fs.ErrNotExist) {
					return nil
				} else if err != nil {
					return r.err(op, target.String(), p, err)
				}
			}
			if !yield(target, nil) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			yield("", err)
		}
	}
}

// WalkLinks calls fn for each file dir/<alg>/<hex>/link whose path names a
// valid digest, in lexical order. A missing dir is empty. fn may return
// fs.SkipAll to stop. A symbolic link in place of an <alg> or <hex>
// directory (the registry follows it) is an error wrapping [ErrSymlink]:
// what it stands for can be neither skipped nor changed safely.
func WalkLinks(fsys fs.FS, dir string, fn func(p string, d digest.Digest) error) error {
	if _, ok := fsys.(WalkFS); ok {
		return WalkFiles(fsys, dir, func(p string, _ fs.FileInfo) error {
			rel := strings.Split(strings.TrimPrefix(p, dir+"/"), "/")
			if len(rel) != 3 || rel[2] != "link" {
				return nil
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[1])
			if ValidateDigest(d) != nil {
				return nil
			}
			return fn(p, d)
		})
	}
	// A directory tree: list dir/<alg>/ and hand over dir/<alg>/<hex>/link
	// without listing <hex>/; fn meets a missing link as fs.ErrNotExist.
	algs, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, a := range algs {
		if a.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s", ErrSymlink, path.Join(dir, a.Name()))
		}
		if !a.IsDir() {
			continue
		}
		hexes, err := fs.ReadDir(fsys, path.Join(dir, a.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, h := range hexes {
			if h.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%w: %s", ErrSymlink, path.Join(dir, a.Name(), h.Name()))
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), h.Name())
			if !h.IsDir() || ValidateDigest(d) != nil {
				continue
			}
			if err := fn(path.Join(dir, a.Name(), h.Name(), "link"), d); err != nil {
				if err == fs.SkipAll {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

// String is "repository:tag".
func (t *Tag) String() string { return fmt.Sprintf("%s:%s", t.r.name, t.name) }

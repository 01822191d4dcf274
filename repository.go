package regstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/opencontainers/go-digest"
)

// Repository is one repository of a store. It is a name, validated; it
// does not say whether the repository exists (see [Repository.Exists]).
//
// What a repository holds is read exactly as the v3 registry reads it: a
// blob is in it only if its _layers link exists and the blob data exists; a
// manifest only if its revision link exists and the data exists; a tag
// resolves through tags/<tag>/current/link and then the revision link.
// Writes are the ones the registry makes for the equivalent API calls, in
// the same order: data, then the link to it, then tags.
type Repository struct {
	s    *Store
	name string
}

// Repository returns the repository name. The name must satisfy
// [ValidateName]. No I/O is done.
func (s *Store) Repository(name string) (*Repository, error) {
	if err := ValidateName(name); err != nil {
		return nil, &Error{Op: "repository", Repository: name, Err: err}
	}
	return &Repository{s: s, name: name}, nil
}

// Name is the repository's name.
func (r *Repository) Name() string { return r.name }

// Store is the store the repository belongs to.
func (r *Repository) Store() *Store { return r.s }

// Exists reports whether the repository's _manifests directory exists,
// which is what makes the v3 registry list it in its catalog.
func (r *Repository) Exists() (bool, error) {
	_, err := fs.Stat(r.s.fsys, r.s.layout.Manifests(r.name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (r *Repository) err(op, ref, path string, err error) error {
	return &Error{Op: op, Repository: r.name, Reference: ref, Path: path, Err: err}
}

// resolve reads the link at linkPath and returns the blob it names. A
// missing link or missing data is an error wrapping fs.ErrNotExist.
func (r *Repository) resolve(op string, d digest.Digest, linkPath string) (*Blob, error) {
	target, err := ReadLink(r.s.fsys, linkPath)
	if err != nil {
		return nil, r.err(op, d.String(), linkPath, err)
	}
	b, err := r.s.statBlob(target)
	if err != nil {
		return nil, r.err(op, d.String(), r.s.layout.BlobData(target), err)
	}
	return b, nil
}

// Blob returns the blob d if it is in the repository. The returned blob has
// the canonical digest the link names, which differs from d when d is an
// alias of another algorithm. A missing link or data is an error wrapping
// [fs.ErrNotExist]; a corrupt link one wrapping [ErrCorruptLink].
func (r *Repository) Blob(d digest.Digest) (*Blob, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, r.err("stat blob", string(d), "", err)
	}
	return r.resolve("stat blob", d, r.s.layout.LayerLink(r.name, d))
}

// PutBlob stores a blob as a completed upload does: the data (see
// [Store.PutBlob]), then the _layers link of its canonical digest, then,
// when want is of another algorithm, a _layers link for want as well, also
// naming the canonical digest.
func (r *Repository) PutBlob(rd io.Reader, want digest.Digest, size int64) (*Blob, error) {
	w, err := r.s.writer("put blob", r.name, string(want))
	if err != nil {
		return nil, err
	}
	b, err := r.s.PutBlob(rd, want, size)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Repository = r.name
		}
		return nil, err
	}
	return b, r.link(w, "put blob", b.Digest(), want)
}

// link writes the _layers links for canonical and, if different, alias.
func (r *Repository) link(w WriteFS, op string, canonical, alias digest.Digest) error {
	ds := []digest.Digest{canonical}
	if alias != "" && alias != canonical {
		ds = append(ds, alias)
	}
	for _, d := range ds {
		p := r.s.layout.LayerLink(r.name, d)
		if err := WriteLink(w, p, canonical); err != nil {
			return r.err(op, d.String(), p, err)
		}
	}
	return nil
}

// LinkBlob makes a blob whose data is already in the store visible in the
// repository, by writing its _layers link.
func (r *Repository) LinkBlob(d digest.Digest) (*Blob, error) {
	w, err := r.s.writer("link blob", r.name, string(d))
	if err != nil {
		return nil, err
	}
	if err := ValidateDigest(d); err != nil {
		return nil, r.err("link blob", string(d), "", err)
	}
	b, err := r.s.statBlob(d)
	if err != nil {
		return nil, r.err("link blob", d.String(), r.s.layout.BlobData(d), err)
	}
	return b, r.link(w, "link blob", d, "")
}

// Mount links blob d, found through repository from, into r, as the
// registry's cross-repository mount does. No data is copied.
func (r *Repository) Mount(from *Repository, d digest.Digest) (*Blob, error) {
	w, err := r.s.writer("mount blob", r.name, string(d))
	if err != nil {
		return nil, err
	}
	b, err := from.Blob(d)
	if err != nil {
		return nil, err
	}
	return b, r.link(w, "mount blob", b.Digest(), d)
}

// UnlinkBlob removes the blob's _layers link, as the registry's blob DELETE
// does. The data stays until garbage collection. A blob not in the
// repository is an error wrapping [fs.ErrNotExist].
func (r *Repository) UnlinkBlob(d digest.Digest) error {
	w, err := r.s.writer("unlink blob", r.name, string(d))
	if err != nil {
		return err
	}
	if _, err := r.Blob(d); err != nil {
		return err
	}
	p := r.s.layout.LayerLink(r.name, d)
	if err := r.s.refuseSymlink(p); err != nil {
		return r.err("unlink blob", d.String(), p, err)
	}
	if err := w.Remove(p); err != nil {
		return r.err("unlink blob", d.String(), p, err)
	}
	return nil
}

// Manifest returns manifest d if it is in the repository: its revision link
// exists and names data that exists. The data is read, checked against its
// digest and parsed. Errors wrap [fs.ErrNotExist] (not in the repository),
// [ErrCorruptLink], [ErrDigestMismatch], [ErrManifestTooLarge] or
// [ErrManifestInvalid].
func (r *Repository) Manifest(d digest.Digest) (*Manifest, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, r.err("get manifest", string(d), "", err)
	}
	b, err := r.resolve("get manifest", d, r.s.layout.RevisionLink(r.name, d))
	if err != nil {
		return nil, err
	}
	return r.readManifest(b)
}

// ManifestBlob returns the data blob of manifest d if d is in the
// repository (its revision link exists and names data that exists), without
// reading the data. Errors are those of [Repository.Manifest] but for the
// content checks.
func (r *Repository) ManifestBlob(d digest.Digest) (*Blob, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, r.err("stat manifest", string(d), "", err)
	}
	return r.resolve("stat manifest", d, r.s.layout.RevisionLink(r.name, d))
}

// Manifest reads the manifest stored as blob data d, whether or not any
// repository links it: read (at most [MaxManifestSize]), checked against
// d and parsed. Tools that judge data by its path (a collector marking
// through revision links it has listed) use it; handles use
// [Repository.Manifest].
func (s *Store) Manifest(d digest.Digest) (*Manifest, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, &Error{Op: "get manifest", Reference: string(d), Err: err}
	}
	p := s.layout.BlobData(d)
	raw, err := ReadFileMax(s.fsys, p, MaxManifestSize)
	if err != nil {
		return nil, &Error{Op: "get manifest", Reference: d.String(), Path: p, Err: err}
	}
	return (&Repository{s: s}).parseManifestData(d, p, raw)
}

// readManifest reads, verifies and parses the manifest in blob b.
func (r *Repository) readManifest(b *Blob) (*Manifest, error) {
	fail := func(err error) error { return r.err("get manifest", b.Digest().String(), b.Path(), err) }
	if b.Size() > MaxManifestSize {
		return nil, fail(fmt.Errorf("%w: %d bytes, at most %d", ErrManifestTooLarge, b.Size(), MaxManifestSize))
	}
	// Bounded even so: the data may have grown since it was described, or
	// be a file whose size says nothing.
	raw, err := ReadFileMax(r.s.fsys, b.Path(), MaxManifestSize)
	if err != nil {
		return nil, fail(err)
	}
	return r.parseManifestData(b.Digest(), b.Path(), raw)
}

// parseManifestData checks raw, read from path, against digest d and
// parses it.
func (r *Repository) parseManifestData(d digest.Digest, path string, raw []byte) (*Manifest, error) {
	fail := func(err error) error { return r.err("get manifest", d.String(), path, err) }
	if len(raw) > MaxManifestSize {
		return nil, fail(fmt.Errorf("%w: %d bytes, at most %d", ErrManifestTooLarge, len(raw), MaxManifestSize))
	}
	if got := d.Algorithm().FromBytes(raw); got != d {
		return nil, fail(fmt.Errorf("%w: content hashes to %s", ErrDigestMismatch, got))
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, fail(err)
	}
	return m, nil
}

// PutManifest stores a manifest as the registry's manifest PUT does, and
// then tags it with each of tags.
//
// mediaType is the Content-Type of the push; it must be one of the four
// manifest types the v3 registry accepts and agree with the body (an empty
// mediaType takes the one detected from the body). The push is refused, with
// nothing written, when the manifest is invalid or larger than
// [MaxManifestSize], when a config or layer blob is not linked in the
// repository, or when a child manifest of an index is not in the repository
// (errors wrapping [ErrManifestInvalid], [ErrManifestTooLarge] or
// [ErrManifestBlobUnknown]). Descriptors with URLs (foreign layers) need no
// link. Schema1 manifests are refused, as by the v3 registry.
//
// Then it writes the data (bytes verbatim; existing data is kept), the
// revision link, and for each tag the tag's index entry and then its
// current link, in that order.
func (r *Repository) PutManifest(mediaType string, raw []byte, tags ...string) (*Manifest, error) {
	w, err := r.s.writer("put manifest", r.name, "")
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return nil, r.err("put manifest", t, "", err)
		}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, r.err("put manifest", "", "", err)
	}
	fail := func(err error) (*Manifest, error) { return nil, r.err("put manifest", m.Digest().String(), "", err) }
	switch {
	case m.MediaType() == MediaTypeDockerSchema1Signed:
		return fail(fmt.Errorf("%w: schema1 manifests cannot be pushed", ErrManifestInvalid))
	case mediaType != "" && mediaType != m.MediaType():
		return fail(fmt.Errorf("%w: pushed as %q but the content reads as %q", ErrManifestInvalid, mediaType, m.MediaType()))
	}
	if err := r.CheckReferences(m); err != nil {
		return fail(err)
	}
	if _, err := r.s.PutBlob(bytes.NewReader(raw), m.Digest(), m.Size()); err != nil {
		return fail(err)
	}
	p := r.s.layout.RevisionLink(r.name, m.Digest())
	if err := WriteLink(w, p, m.Digest()); err != nil {
		return nil, r.err("put manifest", m.Digest().String(), p, err)
	}
	for _, t := range tags {
		if err := r.setTag(w, t, m.Digest()); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CheckReferences applies the registry's push validation.
func (r *Repository) CheckReferences(m *Manifest) error {
	for d := range m.Blobs() {
		if len(d.URLs) > 0 {
			continue
		}
		if _, err := r.Blob(d.Digest); err != nil {
			return fmt.Errorf("%w: blob %s: %w", ErrManifestBlobUnknown, d.Digest, err)
		}
	}
	for _, c := range m.Children() {
		if _, err := r.Manifest(c.Digest); err != nil {
			return fmt.Errorf("%w: child manifest %s: %w", ErrManifestBlobUnknown, c.Digest, err)
		}
	}
	return nil
}

// DeleteManifest removes manifest d from the repository with the registry's
// semantics: every tag whose current link names d is deleted whole (as
// [Tag.Delete]), then the revision link. Tags that once pointed at d keep
// their index entries; the data stays until garbage collection. A manifest
// not in the repository is an error wrapping [fs.ErrNotExist].
func (r *Repository) DeleteManifest(d digest.Digest) error {
	w, err := r.s.writer("delete manifest", r.name, string(d))
	if err != nil {
		return err
	}
	if err := ValidateDigest(d); err != nil {
		return r.err("delete manifest", string(d), "", err)
	}
	p := r.s.layout.RevisionLink(r.name, d)
	if err := r.s.refuseSymlink(p); err != nil {
		return r.err("delete manifest", d.String(), p, err)
	}
	if _, err := r.resolve("delete manifest", d, p); err != nil {
		return err
	}
	// Pointers go before what they point at: the tags first.
	for t, err := range r.Tags() {
		if err != nil {
			return err
		}
		cur, err := t.Digest()
		switch {
		case err == nil && cur == d:
		case errors.Is(err, fs.ErrNotExist) && t.indexed(d):
			// A tag whose delete was interrupted after its current
			// link went: finish it.
		default:
			continue
		}
		if err := t.Delete(); err != nil {
			return err
		}
	}
	if err := w.Remove(p); err != nil {
		return r.err("delete manifest", d.String(), p, err)
	}
	return nil
}

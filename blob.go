package regstore

import (
	"crypto/rand"
	_ "crypto/sha256" // go-digest v1.0.0 does not register its hashes
	_ "crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore/internal/hashio"
)

// mediaTypeOctetStream is what the registry reports for every blob: media
// types are not stored on disk.
const mediaTypeOctetStream = "application/octet-stream"

// Blob is the data of one blob in a store: a file at
// blobs/<alg>/<hex[:2]>/<hex>/data whose content hashes to its digest.
// A Blob is obtained from [Store.Blob], [Store.PutBlob] or a repository, and
// describes what was there when it was obtained.
type Blob struct {
	s    *Store
	desc v1.Descriptor
}

// Digest is the blob's (canonical) digest.
func (b *Blob) Digest() digest.Digest { return b.desc.Digest }

// Size is the blob's length in bytes.
func (b *Blob) Size() int64 { return b.desc.Size }

// Descriptor describes the blob with the media type the registry reports
// for blobs, application/octet-stream.
func (b *Blob) Descriptor() v1.Descriptor { return b.desc }

// Path is the backend path of the blob's data file.
func (b *Blob) Path() string { return b.s.layout.BlobData(b.desc.Digest) }

// Open opens the blob's data for reading. Seek fails with an error wrapping
// [errors.ErrUnsupported] on a backend whose files cannot seek.
func (b *Blob) Open() (io.ReadSeekCloser, error) {
	f, err := b.s.fsys.Open(b.Path())
	if err != nil {
		return nil, &Error{Op: "open blob", Reference: b.desc.Digest.String(), Path: b.Path(), Err: err}
	}
	if rs, ok := f.(io.ReadSeekCloser); ok {
		return rs, nil
	}
	return noSeek{f}, nil
}

type noSeek struct{ fs.File }

func (noSeek) Seek(int64, int) (int64, error) {
	return 0, fmt.Errorf("seek: %w", errors.ErrUnsupported)
}

// Verify re-reads the blob and checks its digest and size. A mismatch is an
// error wrapping [ErrDigestMismatch] or [ErrSizeMismatch].
func (b *Blob) Verify() error {
	f, err := b.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	h := b.desc.Digest.Algorithm().Hash()
	n, err := hashio.Copy(io.Discard, f, h)
	if err != nil {
		return &Error{Op: "verify blob", Reference: b.desc.Digest.String(), Path: b.Path(), Err: err}
	}
	if got := digest.NewDigest(b.desc.Digest.Algorithm(), h); got != b.desc.Digest {
		return &Error{Op: "verify blob", Reference: b.desc.Digest.String(), Path: b.Path(),
			Err: fmt.Errorf("%w: content hashes to %s", ErrDigestMismatch, got)}
	}
	if n != b.desc.Size {
		return &Error{Op: "verify blob", Reference: b.desc.Digest.String(), Path: b.Path(),
			Err: fmt.Errorf("%w: read %d bytes, stat said %d", ErrSizeMismatch, n, b.desc.Size)}
	}
	return nil
}

// Blob returns the blob with digest d if its data exists in the store.
// Blob data is always stored under the canonical (sha256) digest, so a
// digest of another algorithm is only found through a repository link.
// A missing blob is an error wrapping [fs.ErrNotExist].
func (s *Store) Blob(d digest.Digest) (*Blob, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, &Error{Op: "stat blob", Reference: string(d), Err: err}
	}
	b, err := s.statBlob(d)
	if err != nil {
		return nil, &Error{Op: "stat blob", Reference: d.String(), Path: s.layout.BlobData(d), Err: err}
	}
	return b, nil
}

// statBlob is Blob for a validated digest; its error is the backend's.
func (s *Store) statBlob(d digest.Digest) (*Blob, error) {
	fi, err := fs.Stat(s.fsys, s.layout.BlobData(d))
	if err == nil && fi.IsDir() {
		// The registry logs a directory here as corruption and reports
		// the blob unknown.
		err = fmt.Errorf("data is a directory: %w", fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return &Blob{s: s, desc: v1.Descriptor{MediaType: mediaTypeOctetStream, Digest: d, Size: fi.Size()}}, nil
}

// PutBlob stores the content read from r and returns its blob. The content
// is hashed in the same pass that writes it and is published at its final
// path only after it checks out, so a reader never sees a partial or wrong
// blob.
//
// want, if not empty, is the digest the content must have, and size, if not
// negative, its length; a mismatch is an error wrapping [ErrDigestMismatch]
// or [ErrSizeMismatch] and leaves the tree unchanged. Data is stored under
// the canonical sha256 digest whatever want's algorithm. When want is a
// sha256 digest whose data already exists, PutBlob succeeds at once without
// reading r (content addressing, as the registry does).
func (s *Store) PutBlob(r io.Reader, want digest.Digest, size int64) (*Blob, error) {
	w, err := s.writer("put blob", "", string(want))
	if err != nil {
		return nil, err
	}
	if want != "" {
		if err := ValidateDigest(want); err != nil {
			return nil, &Error{Op: "put blob", Reference: string(want), Err: err}
		}
		if want.Algorithm() == digest.Canonical {
			if b, err := s.statBlob(want); err == nil {
				if size >= 0 && b.Size() != size {
					return nil, &Error{Op: "put blob", Reference: want.String(), Path: b.Path(),
						Err: fmt.Errorf("%w: stored blob has %d bytes, expected %d", ErrSizeMismatch, b.Size(), size)}
				}
				return b, nil
			}
			return s.putBlobAt(w, s.layout.BlobData(want), r, want, size)
		}
	}
	// The final path is known only at the end: stage the content beside
	// the blobs (a temporary file, as Walk and Check classify it), then
	// move it into place.
	staging := path.Join(s.layout.Blobs(), "staging-"+rand.Text()+".tmp")
	b, err := s.putBlobAt(w, staging, r, want, size)
	if err != nil {
		return nil, err
	}
	final := s.layout.BlobData(b.Digest())
	if existing, err := s.statBlob(b.Digest()); err == nil {
		return existing, Remove(w, staging)
	}
	if err := Rename(w, staging, final); err != nil {
		return nil, errors.Join(&Error{Op: "put blob", Reference: b.Digest().String(), Path: final, Err: err}, Remove(w, staging))
	}
	return b, nil
}

// putBlobAt writes r to name, verifying it against want and size, and
// commits it only if it checks out.
func (s *Store) putBlobAt(w WriteFS, name string, r io.Reader, want digest.Digest, size int64) (_ *Blob, err error) {
	fail := func(e error) error {
		return &Error{Op: "put blob", Reference: string(want), Path: name, Err: e}
	}
	fw, err := w.Create(name)
	if err != nil {
		return nil, fail(err)
	}
	committing := false
	defer func() {
		if err != nil && !committing { // a failed Commit cleans up itself
			err = errors.Join(err, fw.Cancel())
		}
	}()
	canonical := digest.Canonical.Hash()
	hashes := []hash.Hash{canonical}
	if want != "" && want.Algorithm() != digest.Canonical {
		hashes = append(hashes, want.Algorithm().Hash())
	}
	if size >= 0 {
		r = io.LimitReader(r, size+1) // one byte more reveals overlong input
	}
	n, err := hashio.Copy(fw, r, hashes...)
	if err != nil {
		return nil, fail(err)
	}
	if size >= 0 && n != size {
		return nil, fail(fmt.Errorf("%w: read %d bytes, expected %d", ErrSizeMismatch, n, size))
	}
	got := digest.NewDigest(digest.Canonical, canonical)
	if want != "" {
		check := got
		if len(hashes) > 1 {
			check = digest.NewDigest(want.Algorithm(), hashes[1])
		}
		if check != want {
			return nil, fail(fmt.Errorf("%w: content hashes to %s, expected %s", ErrDigestMismatch, check, want))
		}
	}
	committing = true
	if err := fw.Commit(); err != nil {
		return nil, fail(err)
	}
	return &Blob{s: s, desc: v1.Descriptor{MediaType: mediaTypeOctetStream, Digest: got, Size: n}}, nil
}

// ReadAll reads the blob's data whole, for small blobs (a config, a
// signature, an SBOM), refusing one larger than max bytes with an error
// wrapping [ErrBlobTooLarge] before anything is read. The data is checked
// against the digest and size: a mismatch is an error wrapping
// [ErrDigestMismatch] or [ErrSizeMismatch].
func (b *Blob) ReadAll(max int64) ([]byte, error) {
	ref := b.desc.Digest.String()
	if b.desc.Size > max {
		return nil, &Error{Op: "read blob", Reference: ref, Path: b.Path(),
			Err: fmt.Errorf("%w: %d bytes, over the limit of %d", ErrBlobTooLarge, b.desc.Size, max)}
	}
	f, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, b.desc.Size+1))
	if err != nil {
		return nil, &Error{Op: "read blob", Reference: ref, Path: b.Path(), Err: err}
	}
	if int64(len(data)) != b.desc.Size {
		return nil, &Error{Op: "read blob", Reference: ref, Path: b.Path(),
			Err: fmt.Errorf("%w: read %d bytes or more, stat said %d", ErrSizeMismatch, len(data), b.desc.Size)}
	}
	if got := b.desc.Digest.Algorithm().FromBytes(data); got != b.desc.Digest {
		return nil, &Error{Op: "read blob", Reference: ref, Path: b.Path(),
			Err: fmt.Errorf("%w: content hashes to %s", ErrDigestMismatch, got)}
	}
	return data, nil
}

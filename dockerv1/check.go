package dockerv1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ProblemKind names a kind of damage in a v1 tree.
type ProblemKind string

// The kinds of Problem Check reports.
const (
	// MissingImage: a tag points at an image that is not there.
	MissingImage ProblemKind = "missing-image"
	// MissingAncestor: an image's parent (or an ancestry entry) is not there.
	MissingAncestor ProblemKind = "missing-ancestor"
	// UnfinishedImage: an image's push never finished (_inprogress).
	UnfinishedImage ProblemKind = "unfinished"
	// ChecksumMismatch: the json and layer do not hash to the _checksum.
	ChecksumMismatch ProblemKind = "checksum-mismatch"
	// MissingLayer: a finished image has no layer file.
	MissingLayer ProblemKind = "missing-layer"
	// InvalidImage: an image whose json or ancestry does not parse or
	// disagree, or a name under images/ that is not an id.
	InvalidImage ProblemKind = "invalid-image"
	// InvalidTag: a tag whose file does not hold an image id.
	InvalidTag ProblemKind = "invalid-tag"
)

// Problem is one finding of Check.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Image is the image concerned, if any.
	Image string `json:"image,omitempty"`
	// Repository and Tag name the tag concerned, if any.
	Repository string `json:"repository,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// String is the problem as one line: its kind, where, and the detail.
func (p Problem) String() string {
	s := string(p.Kind)
	if p.Repository != "" {
		s += " " + p.Repository + ":" + p.Tag
	}
	if p.Image != "" {
		s += " image " + p.Image
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Checksums reads every finished image's layer to verify its
	// "sha256:" _checksum entries (tarsum entries are not verified).
	// Without it only the metadata is read.
	Checksums bool
}

// Check examines the v1 tree and returns what is wrong with it: tags
// pointing nowhere, missing ancestors, unfinished pushes, missing layers,
// unparsable metadata, and with opts.Checksums checksum mismatches. The
// error is for a tree that cannot be read, or ctx done.
func (s *Storage) Check(ctx context.Context, opts CheckOptions) ([]Problem, error) {
	var probs []Problem
	cache := map[string]*Image{}
	ents, err := fs.ReadDir(s.fsys, s.path("images"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return probs, err
		}
		id := e.Name()
		if !e.IsDir() || !ValidID(id) {
			probs = append(probs, Problem{Kind: InvalidImage, Image: id, Detail: "not a 16- or 64-hex image directory"})
			continue
		}
		img, err := s.Image(id)
		switch {
		case errors.Is(err, ErrInvalidImage):
			probs = append(probs, Problem{Kind: InvalidImage, Image: id, Detail: err.Error()})
			continue
		case errors.Is(err, fs.ErrNotExist):
			probs = append(probs, Problem{Kind: InvalidImage, Image: id, Detail: "no json"})
			continue
		case err != nil:
			return probs, err
		}
		if img.InProgress {
			probs = append(probs, Problem{Kind: UnfinishedImage, Image: id, Detail: "_inprogress: the push never finished"})
			continue
		}
		if img.LayerSize < 0 {
			probs = append(probs, Problem{Kind: MissingLayer, Image: id})
			continue
		}
		if _, err := s.chain(id, cache); err != nil {
			switch {
			case errors.Is(err, ErrMissingAncestor):
				probs = append(probs, Problem{Kind: MissingAncestor, Image: id, Detail: err.Error()})
			case errors.Is(err, ErrInvalidImage):
				probs = append(probs, Problem{Kind: InvalidImage, Image: id, Detail: err.Error()})
			case errors.Is(err, ErrUnfinished):
				// Reported on the unfinished ancestor itself.
			default:
				return probs, err
			}
		}
		if opts.Checksums {
			bad, err := s.verifyChecksum(img)
			if err != nil {
				return probs, err
			}
			if bad != nil {
				probs = append(probs, Problem{Kind: ChecksumMismatch, Image: id, Detail: bad.Error()})
			}
		}
	}
	for r, err := range s.Repositories() {
		if err != nil {
			return probs, err
		}
		for t, err := range r.Tags() {
			if err != nil {
				return probs, err
			}
			if !ValidID(t.ImageID) {
				probs = append(probs, Problem{Kind: InvalidTag, Repository: r.FullName(), Tag: t.Name, Detail: fmt.Sprintf("holds %q", t.ImageID)})
				continue
			}
			if _, err := fs.Stat(s.fsys, s.path("images", t.ImageID, "json")); errors.Is(err, fs.ErrNotExist) {
				probs = append(probs, Problem{Kind: MissingImage, Repository: r.FullName(), Tag: t.Name, Image: t.ImageID})
			} else if err != nil {
				return probs, err
			}
		}
	}
	return probs, nil
}

// verifyChecksum returns the mismatch of img's layer with its _checksum
// (nil when it matches or there is nothing to verify), or an I/O error.
func (s *Storage) verifyChecksum(img *Image) (mismatch, err error) {
	sum := newChecksummer(img)
	if !sum.verifiable() {
		return nil, nil
	}
	f, err := s.OpenLayer(img.ID)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(sum, f); err != nil {
		return nil, err
	}
	return sum.check(), nil
}

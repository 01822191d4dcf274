package regstore

import (
	"errors"
	"io/fs"
	"strings"
)

// Sentinel errors. Each one that belongs to a broader [io/fs] class also
// matches it with [errors.Is]: the invalid-input sentinels match
// [fs.ErrInvalid]. Missing things are reported with [fs.ErrNotExist] itself,
// and missing write support with [errors.ErrUnsupported].
var (
	ErrInvalidName   = &sentinel{"invalid repository name", fs.ErrInvalid}
	ErrInvalidTag    = &sentinel{"invalid tag", fs.ErrInvalid}
	ErrInvalidDigest = &sentinel{"invalid digest", fs.ErrInvalid}

	// ErrCorruptLink: a link file exists but does not hold exactly one
	// digest string "<alg>:<hex>" with no other bytes. The registry answers
	// such links with a server error, not with "unknown".
	ErrCorruptLink = errors.New("corrupt link file")
	// ErrDigestMismatch: content does not hash to the digest it claims.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: content is not as long as it claims.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrManifestInvalid: a manifest cannot be parsed or has the wrong shape.
	ErrManifestInvalid = errors.New("invalid manifest")
	// ErrManifestTooLarge: a manifest exceeds [MaxManifestSize]. It also
	// matches ErrManifestInvalid.
	ErrManifestTooLarge = &sentinel{"manifest too large", ErrManifestInvalid}
	// ErrManifestBlobUnknown: a manifest names a blob or child manifest that
	// is not in the repository, so the registry would refuse the push.
	ErrManifestBlobUnknown = errors.New("manifest references unknown blob")
	// ErrNoLayout: [Open] found a backend that holds other things and no
	// v2 layout at the layout root (a wrong folder given as the registry's
	// rootdirectory). It also matches [fs.ErrNotExist].
	ErrNoLayout = &sentinel{"no registry storage layout", fs.ErrNotExist}
)

// sentinel is an error value that also matches a broader class.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }

// Error is the one error type of this package. It records the operation,
// the repository and reference it concerned, and the backend path, when
// known, and wraps the cause.
type Error struct {
	Op         string // e.g. "put blob", "resolve tag"
	Repository string // repository name, if any
	Reference  string // tag or digest, if any
	Path       string // backend path, if any
	Err        error
}

// Error formats as "op repo:tag (path): cause", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Repository != "" || e.Reference != "" {
		b.WriteByte(' ')
		b.WriteString(e.Repository)
		if e.Reference != "" {
			if e.Repository != "" {
				if strings.Contains(e.Reference, ":") {
					b.WriteByte('@')
				} else {
					b.WriteByte(':')
				}
			}
			b.WriteString(e.Reference)
		}
	}
	if e.Path != "" {
		b.WriteString(" (")
		b.WriteString(e.Path)
		b.WriteByte(')')
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

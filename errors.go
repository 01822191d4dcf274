package regstore

import (
	"errors"
	"fmt"
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
	// ErrNotRegular: a file of the tree (or of an import source) that
	// must be a regular file is something else: a named pipe, a socket, a
	// device. It is refused without being read, since reading such a file
	// can block for ever or never end. It also matches [fs.ErrInvalid].
	ErrNotRegular = &sentinel{"not a regular file", fs.ErrInvalid}

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
	// ErrSymlink: a symbolic link inside the layout. The registry follows
	// it; regstore never follows one when it changes or collects the tree
	// (the link could redirect a delete to another repository), and
	// refuses instead. It also matches [fs.ErrInvalid].
	ErrSymlink = &sentinel{"symbolic link inside the layout", fs.ErrInvalid}
	// ErrBlobTooLarge: a blob is larger than a caller's limit
	// ([Blob.ReadAll]).
	ErrBlobTooLarge = errors.New("blob too large")
	// ErrManifestBlobUnknown: a manifest names a blob or child manifest that
	// is not in the repository, so the registry would refuse the push.
	ErrManifestBlobUnknown = errors.New("manifest references unknown blob")
	// ErrNoLayout: [Open] found a backend that holds other things and no
	// v2 layout at the layout root (a wrong folder given as the registry's
	// rootdirectory). It also matches [fs.ErrNotExist].
	ErrNoLayout = &sentinel{"no registry storage layout", fs.ErrNotExist}
)

// notRegular is the error for name, of type mode, where a regular file
// must be.
func notRegular(op, name string, mode fs.FileMode) error {
	return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, typeName(mode))}
}

// typeName names the type of a file mode.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	}
	return "irregular file"
}

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
// When the cause names the same path (an [fs.PathError] does), the path is
// said once: "resolve tag a:v1 (…/current/link): open: file does not exist".
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
		msg := e.Err.Error()
		if e.Path != "" {
			msg = strings.ReplaceAll(msg, " ("+e.Path+"): ", ": ")
			msg = strings.ReplaceAll(msg, " "+e.Path+": ", ": ")
		}
		b.WriteString(msg)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

package regstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// MaxLinkSize bounds how much of a link file is read. A valid link is at
// most "sha512:" plus 128 hex characters.
const MaxLinkSize = 256

// ParseLink parses the content of a link file exactly as the registry does:
// one digest string "<alg>:<hex>" of an available algorithm, lowercase, with
// nothing before or after it, not even a newline. Anything else is an error
// wrapping [ErrCorruptLink].
func ParseLink(b []byte) (digest.Digest, error) {
	d := digest.Digest(b)
	if wellFormed(d) {
		return d, nil
	}
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrCorruptLink, truncate(b), err)
	}
	return d, nil
}

// ReadLink reads and parses the link file at name. A missing file wraps
// [fs.ErrNotExist]; bad content wraps [ErrCorruptLink].
func ReadLink(fsys fs.FS, name string) (digest.Digest, error) {
	if r, ok := fsys.(interface {
		readFileMax(string, int) ([]byte, error)
	}); ok {
		b, err := r.readFileMax(name, MaxLinkSize)
		if errors.Is(err, syscall.EISDIR) {
			return "", fmt.Errorf("%w: %w", ErrCorruptLink, err)
		}
		if err != nil {
			return "", err
		}
		if len(b) > MaxLinkSize {
			return "", fmt.Errorf("%w: longer than %d bytes", ErrCorruptLink, MaxLinkSize)
		}
		return ParseLink(b)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var buf [MaxLinkSize + 1]byte
	n, err := io.ReadFull(f, buf[:])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	b := buf[:n]
	if err != nil {
		// Reading a directory fails here: a link path that is a directory
		// is as corrupt as one with bad content.
		return "", fmt.Errorf("%w: %w", ErrCorruptLink, err)
	}
	if len(b) > MaxLinkSize {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrCorruptLink, MaxLinkSize)
	}
	return ParseLink(b)
}

// ReadFileMax reads the file name whole if it holds at most max bytes, and
// otherwise at most max+1 bytes of it, so that a caller can tell it is too
// long without reading it all. It uses the backend's own bounded read when
// it has one. Files that must be small (links, manifests, startedat) are
// read with it, so a huge or endless file costs max+1 bytes, not memory.
func ReadFileMax(fsys fs.FS, name string, max int) ([]byte, error) {
	if r, ok := fsys.(interface {
		readFileMax(string, int) ([]byte, error)
	}); ok {
		return r.readFileMax(name, max)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

// WriteLink atomically publishes a link to d at name.
func WriteLink(w WriteFS, name string, d digest.Digest) error {
	return WriteFile(w, name, strings.NewReader(d.String()))
}

// Remove removes name; a missing file is not an error.
func Remove(w WriteFS, name string) error {
	if err := w.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

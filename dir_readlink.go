package regstore

import (
	"io/fs"
)

var _ fs.ReadLinkFS = (*Dir)(nil)

// Lstat describes name without following a final symbolic link
// ([fs.ReadLinkFS]). Mutations of the layout use it (through [fs.Lstat]) to
// refuse paths that pass through a symbolic link.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	return d.lstat(name)
}

// ReadLink returns the destination of the symbolic link name
// ([fs.ReadLinkFS]), as stored: it is not resolved.
func (d *Dir) ReadLink(name string) (string, error) {
	if err := checkPath("readlink", name); err != nil {
		return "", err
	}
	return d.root.Readlink(name)
}

// Package walkdepth lists the directories a fixed number of levels below a
// root of an fs.FS, the way the blob tree (blobs/<alg>/<hex[:2]>/<hex>) is
// listed without entering each blob's own directory. It is not a general
// tree walker: see io/fs.WalkDir for that.
package walkdepth

import (
	"errors"
	"io/fs"
	"path"
)

// Walk calls fn with the path, relative to root, of every directory
// exactly depth levels below root, in lexical order. A missing root is
// empty. fn may return fs.SkipAll to stop.
func Walk(fsys fs.FS, root string, depth int, fn func(rel string) error) error {
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if depth == 0 {
			return fn(rel)
		}
		entries, err := fs.ReadDir(fsys, path.Join(root, rel))
		if errors.Is(err, fs.ErrNotExist) && rel != "." {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if err := walk(path.Join(rel, e.Name()), depth-1); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk(".", depth)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == fs.SkipAll {
		return nil
	}
	return err
}

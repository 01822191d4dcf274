//go:build !linux

package regstore

import (
	"io"
	"io/fs"
	"os"
)

type beneath struct{}

func newBeneath(string) *beneath { return &beneath{} }
func (*beneath) close()          {}

func (d *Dir) fastOpen(string) (fs.File, bool, error)          { return nil, false, nil }
func (d *Dir) fastStat(string) (fs.FileInfo, bool, error)      { return nil, false, nil }
func (d *Dir) fastReadDir(string) ([]fs.DirEntry, bool, error) { return nil, false, nil }

// syncFS reports that there is no syncfs(2) here: the caller syncs file by
// file.
func syncFS(*os.File) (ok bool, err error) { return false, nil }

func (d *Dir) fastMkdirAll(string) ([]string, bool, error)      { return nil, false, nil }
func (d *Dir) fastCreateExcl(string) (*os.File, bool, error)    { return nil, false, nil }
func (d *Dir) fastLstat(string) (fs.FileInfo, bool, error)      { return nil, false, nil }
func (d *Dir) fastRename(oldname, newname string) (bool, error) { return false, nil }
func (d *Dir) fastLink(oldname, newname string) (bool, error)   { return false, nil }

func (d *Dir) readFileMax(name string, max int) ([]byte, error) {
	f, err := d.rootOpen(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

func (*beneath) readFile(string, int) ([]byte, bool, error) { return nil, false, nil }

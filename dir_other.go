//go:build !linux

package regstore

import "io/fs"

type beneath struct{}

func newBeneath(string) *beneath { return &beneath{} }
func (*beneath) close()          {}

func (d *Dir) fastOpen(string) (fs.File, bool, error)          { return nil, false, nil }
func (d *Dir) fastStat(string) (fs.FileInfo, bool, error)      { return nil, false, nil }
func (d *Dir) fastReadDir(string) ([]fs.DirEntry, bool, error) { return nil, false, nil }

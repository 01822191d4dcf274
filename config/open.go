package config

import (
	"fmt"

	"github.com/regstore/regstore"
)

// Open opens the tree of a filesystem config: a [regstore.Dir] on
// storage.filesystem.rootdirectory and the store in it. The caller closes
// the Dir. An s3 config is an error wrapping [ErrUnsupportedDriver]: the s3
// module's OpenConfig opens those.
func Open(c *Config, opts ...regstore.Option) (*regstore.Store, *regstore.Dir, error) {
	if c.Storage.Driver != "filesystem" {
		return nil, nil, fmt.Errorf("storage driver %q: %w here (the s3 module's OpenConfig opens s3 configs)", c.Storage.Driver, ErrUnsupportedDriver)
	}
	d, err := regstore.OpenDir(c.Storage.Filesystem.RootDirectory)
	if err != nil {
		return nil, nil, err
	}
	s, err := regstore.Open(d, opts...)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return s, d, nil
}

package regstore_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/regstore/regstore"
)

// A registry rootdirectory whose docker/ is a symbolic link to another
// disk: FindLayout resolves it, and the store opens at the resolved
// layout.
func ExampleFindLayout() {
	root, _ := os.MkdirTemp("", "root")
	disk, _ := os.MkdirTemp("", "disk")
	defer os.RemoveAll(root)
	defer os.RemoveAll(disk)
	os.MkdirAll(filepath.Join(disk, "registry", "v2"), 0o755)
	os.Symlink(disk, filepath.Join(root, "docker"))

	dir, layoutRoot, err := regstore.FindLayout(root)
	if err != nil {
		panic(err)
	}
	d, err := regstore.OpenDir(dir)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	s, err := regstore.Open(d, regstore.WithLayoutRoot(layoutRoot))
	if err != nil {
		panic(err)
	}
	real, _ := filepath.EvalSymlinks(disk)
	fmt.Println(dir == filepath.Join(real, "registry", "v2"), layoutRoot, s.Layout().Root())
	// Output: true . .
}

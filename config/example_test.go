package config_test

import (
	"fmt"
	"os"

	"github.com/regstore/regstore/config"
)

func ExampleParse() {
	c, err := config.Parse([]byte(`
version: 0.1
storage:
  filesystem: {rootdirectory: /var/lib/docker-registry}
  cache: {blobdescriptor: redis}
redis: {addr: "127.0.0.1:6379"}
`), []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/registry"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Storage.Driver, c.Storage.Filesystem.RootDirectory, c.Storage.Cache, c.Redis.Addrs)
	// Output: filesystem /srv/registry redis [127.0.0.1:6379]
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "registry-")
	defer os.RemoveAll(dir)
	c, err := config.Parse([]byte("version: 0.1\nstorage: {filesystem: {rootdirectory: "+dir+"}}\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	store, d, err := config.Open(c) // an empty directory: a new tree
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	fmt.Println(store.Layout().Root())
	// Output: docker/registry/v2
}

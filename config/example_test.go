package config_test

import (
	"fmt"

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

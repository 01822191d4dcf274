package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/config"
)

// debian is the Debian package's /etc/docker/registry/config.yml.
const debian = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

func TestParseDebianDefault(t *testing.T) {
	c, err := config.Parse([]byte(debian), nil)
	require.NoError(t, err)
	assert.Equal(t, "filesystem", c.Storage.Driver)
	assert.Equal(t, "/var/lib/docker-registry", c.Storage.Filesystem.RootDirectory)
	assert.Equal(t, config.CacheInMemory, c.Storage.Cache)
	assert.True(t, c.Storage.Delete)
	assert.False(t, c.Storage.ReadOnly)
	assert.False(t, c.Redis.Configured())
	assert.Empty(t, c.Warnings)
}

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		env   []string
		check func(t *testing.T, c *config.Config)
		err   string // error substring; "" means success
	}{
		{name: "default rootdirectory", yaml: "version: 0.1\nstorage: {filesystem: {}}",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, config.DefaultRootDirectory, c.Storage.Filesystem.RootDirectory)
			}},
		{name: "quoted version", yaml: "version: \"0.1\"\nstorage: {filesystem: {rootdirectory: /r}}",
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, "/r", c.Storage.Filesystem.RootDirectory) }},
		{name: "other version", yaml: "version: 0.2\nstorage: {filesystem: {}}", err: `unsupported version: "0.2"`},
		{name: "no version", yaml: "storage: {filesystem: {}}", err: `unsupported version: ""`},
		{name: "REGISTRY_VERSION does not rescue", yaml: "storage: {filesystem: {}}", env: []string{"REGISTRY_VERSION=0.1"}, err: "unsupported version"},
		{name: "bare string driver inmemory", yaml: "version: 0.1\nstorage: inmemory", err: `storage driver "inmemory": unsupported storage driver`},
		{name: "gcs", yaml: "version: 0.1\nstorage: {gcs: {bucket: b}, cache: {blobdescriptor: inmemory}}", err: `storage driver "gcs"`},
		{name: "azure", yaml: "version: 0.1\nstorage: {azure: {}}", err: `storage driver "azure"`},
		{name: "no driver", yaml: "version: 0.1\nstorage: {delete: {enabled: true}}", err: "no storage driver"},
		{name: "env rootdirectory", yaml: debian, env: []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/reg"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "/srv/reg", c.Storage.Filesystem.RootDirectory)
				assert.Equal(t, config.CacheInMemory, c.Storage.Cache, "the rest stays")
				assert.True(t, c.Storage.Delete)
			}},
		{name: "lower-case env is ignored", yaml: debian, env: []string{"registry_storage_filesystem_rootdirectory=/x"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "/var/lib/docker-registry", c.Storage.Filesystem.RootDirectory)
			}},
		{name: "REGISTRY_STORAGE replaces the section", yaml: debian,
			env: []string{"REGISTRY_STORAGE_S3_SECURE=false", "REGISTRY_STORAGE_S3_BUCKET=b", "REGISTRY_STORAGE=s3", "REGISTRY_STORAGE_S3_REGION=us-east-1"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "s3", c.Storage.Driver)
				assert.Equal(t, "b", c.Storage.S3.Bucket)
				assert.False(t, c.Storage.S3.Secure)
				assert.Equal(t, config.CacheNone, c.Storage.Cache, "the YAML's cache is dropped")
				assert.False(t, c.Storage.Delete, "the YAML's delete is dropped")
			}},
		{name: "REGISTRY_STORAGE=filesystem drops the cache", yaml: debian, env: []string{"REGISTRY_STORAGE=filesystem"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, config.CacheNone, c.Storage.Cache)
				assert.Equal(t, config.DefaultRootDirectory, c.Storage.Filesystem.RootDirectory)
			}},
		{name: "REGISTRY_STORAGE then cache back", yaml: debian, env: []string{"REGISTRY_STORAGE=filesystem", "REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=inmemory"},
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, config.CacheInMemory, c.Storage.Cache) }},
		{name: "second driver from env", yaml: debian, env: []string{"REGISTRY_STORAGE_S3_BUCKET=b"},
			err: "multiple storage drivers specified in configuration or environment: filesystem, s3"},
		{name: "mixed-case segment ignored", yaml: debian, env: []string{"REGISTRY_STORAGE_FILESYSTEM_rootdirectory=/x"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "/var/lib/docker-registry", c.Storage.Filesystem.RootDirectory)
				assert.Len(t, c.Warnings, 1)
			}},
		{name: "readonly from YAML", yaml: "version: 0.1\nstorage: {filesystem: {}, maintenance: {readonly: {enabled: true}}}",
			check: func(t *testing.T, c *config.Config) { assert.True(t, c.Storage.ReadOnly) }},
		{name: "readonly env ignored when the YAML has it", yaml: "version: 0.1\nstorage: {filesystem: {}, maintenance: {readonly: {enabled: false}}}",
			env: []string{"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true"},
			check: func(t *testing.T, c *config.Config) {
				assert.False(t, c.Storage.ReadOnly)
				require.Len(t, c.Warnings, 1)
				assert.Contains(t, c.Warnings[0], "non-string keys")
			}},
		{name: "readonly env key alone stops the registry", yaml: "version: 0.1\nstorage: {filesystem: {}}",
			env: []string{"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true"}, err: "readonly config key must contain additional keys"},
		{name: "readonly env as a mapping", yaml: "version: 0.1\nstorage: {filesystem: {}}",
			env:   []string{"REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true}"},
			check: func(t *testing.T, c *config.Config) { assert.True(t, c.Storage.ReadOnly) }},
		{name: "unknown cache type", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: memcached}}",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, config.CacheNone, c.Storage.Cache)
				assert.Len(t, c.Warnings, 1)
			}},
		{name: "legacy layerinfo", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {layerinfo: inmemory}}",
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, config.CacheInMemory, c.Storage.Cache) }},
		{name: "redis 2.8 shape", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}\nredis: {addr: 127.0.0.1:6380, password: pw, db: 3, dialtimeout: 10ms}",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, config.CacheRedis, c.Storage.Cache)
				assert.Equal(t, []string{"127.0.0.1:6380"}, c.Redis.Addrs)
				assert.Equal(t, "2.8", c.Redis.Shape)
				assert.Equal(t, "pw", c.Redis.Password)
				assert.Equal(t, 3, c.Redis.DB)
				assert.Equal(t, "10ms", c.Redis.DialTimeout.String())
			}},
		{name: "redis v3 shape", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}\nredis: {addrs: [127.0.0.1:6380], username: u, db: 1, tls: {certificate: c.pem, key: k.pem, rootcas: [ca.pem]}}",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, []string{"127.0.0.1:6380"}, c.Redis.Addrs)
				assert.Equal(t, "v3", c.Redis.Shape)
				assert.Equal(t, "u", c.Redis.Username)
				assert.Equal(t, []string{"ca.pem"}, c.Redis.TLS.RootCAs)
			}},
		{name: "redis cache without redis", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}", err: "redis configuration required"},
		{name: "env REGISTRY_REDIS_ADDR", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}",
			env: []string{"REGISTRY_REDIS_ADDR=h:1", "REGISTRY_REDIS_DB=2", "REGISTRY_REDIS_PASSWORD=p"},
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, []string{"h:1"}, c.Redis.Addrs)
				assert.Equal(t, 2, c.Redis.DB)
				assert.Equal(t, "p", c.Redis.Password)
			}},
		{name: "env REGISTRY_REDIS_ADDRS list", yaml: "version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}",
			env:   []string{"REGISTRY_REDIS_ADDRS=[a:1, b:2]"},
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, []string{"a:1", "b:2"}, c.Redis.Addrs) }},
		{name: "env REGISTRY_REDIS_ADDRS bare", yaml: "version: 0.1\nstorage: {filesystem: {}}",
			env: []string{"REGISTRY_REDIS_ADDRS=a:1"}, err: "must be a YAML list"},
		{name: "proxy", yaml: "version: 0.1\nstorage: {filesystem: {}}\nproxy: {remoteurl: https://a}", env: []string{"REGISTRY_PROXY_REMOTEURL=https://b"},
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, "https://b", c.Proxy.RemoteURL) }},
		{name: "s3", yaml: "version: 0.1\nstorage: {s3: {region: us-east-1, regionendpoint: 'http://127.0.0.1:7070', forcepathstyle: true, bucket: reg, accesskey: k, secretkey: s, rootdirectory: /root, secure: 'false'}}",
			check: func(t *testing.T, c *config.Config) {
				s := c.Storage.S3
				assert.Equal(t, "s3", c.Storage.Driver)
				assert.Equal(t, "reg", s.Bucket)
				assert.True(t, s.ForcePathStyle)
				assert.False(t, s.Secure, "a string bool")
				assert.Equal(t, "root/docker/registry/v2", s.Prefix())
			}},
		{name: "s3aws name", yaml: "version: 0.1\nstorage: {s3aws: {region: r, bucket: b}}",
			check: func(t *testing.T, c *config.Config) { assert.True(t, c.Storage.S3.Secure) }},
		{name: "s3 needs a bucket", yaml: "version: 0.1\nstorage: {s3: {region: r}}", err: "no bucket"},
		{name: "s3 needs a region", yaml: "version: 0.1\nstorage: {s3: {bucket: b}}", err: "no region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := config.Parse([]byte(c.yaml), c.env)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			c.check(t, got)
		})
	}
}

func TestS3Prefix(t *testing.T) {
	for root, want := range map[string]string{
		"": "docker/registry/v2", "/": "docker/registry/v2", "/reg": "reg/docker/registry/v2",
		"reg": "reg/docker/registry/v2", "/reg/": "reg/docker/registry/v2", "//reg//": "reg/docker/registry/v2",
		"a//b": "a//b/docker/registry/v2",
	} {
		assert.Equal(t, want, config.S3{RootDirectory: root}.Prefix(), "rootdirectory %q", root)
	}
}

func TestUnsupportedDriverIsMatchable(t *testing.T) {
	_, err := config.Parse([]byte("version: 0.1\nstorage: {gcs: {}}"), nil)
	assert.True(t, errors.Is(err, config.ErrUnsupportedDriver))
}

func TestLoadAndOpen(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "docker/registry/v2/repositories"), 0o755))
	c, err := config.Load(cfg)
	require.NoError(t, err)
	assert.Equal(t, cfg, c.Path)
	s, d, err := config.Open(c)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, regstore.DefaultLayoutRoot, s.Layout().Root())

	c.Storage.Driver = "s3"
	_, _, err = config.Open(c)
	assert.ErrorIs(t, err, config.ErrUnsupportedDriver)
}

package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regstore/regstore"
)

// DefaultRootDirectory is the filesystem driver's rootdirectory when the
// config leaves it out.
const DefaultRootDirectory = "/var/lib/registry"

// ErrUnsupportedDriver: the config names a storage driver regstore cannot
// operate on.
var ErrUnsupportedDriver = errors.New("unsupported storage driver")

// Cache kinds of storage.cache.blobdescriptor.
const (
	CacheNone     = ""
	CacheInMemory = "inmemory"
	CacheRedis    = "redis"
)

// Config is what regstore needs of a registry's configuration.
type Config struct {
	// Path is the file the config was read from, if any.
	Path    string
	Storage Storage
	Redis   Redis
	Proxy   Proxy
	// Warnings are what the registry would log about the config and go on
	// (an environment variable it ignores, an unknown cache type).
	Warnings []string
}

// Storage is the storage section.
type Storage struct {
	// Driver is "filesystem" or "s3".
	Driver     string
	Filesystem Filesystem
	S3         S3
	// Delete is storage.delete.enabled: the API may delete.
	Delete bool
	// ReadOnly is storage.maintenance.readonly.enabled: the registry
	// refuses every write through its API.
	ReadOnly bool
	// Cache is storage.cache.blobdescriptor: CacheNone, CacheInMemory or
	// CacheRedis ("layerinfo", the legacy key, is read too; another value
	// disables the cache, as in the registry, with a warning).
	Cache string
}

// Filesystem is the filesystem driver's parameters.
type Filesystem struct {
	// RootDirectory is the folder holding docker/ ([DefaultRootDirectory]
	// when left out).
	RootDirectory string
}

// S3 is the s3 driver's parameters (driver name "s3" or "s3aws").
type S3 struct {
	Bucket, Region, RegionEndpoint string
	AccessKey, SecretKey           string
	// RootDirectory is the key prefix before docker/registry/v2, as
	// written; [S3.Prefix] is the prefix the driver derives from it.
	RootDirectory string
	// ForcePathStyle is v3's forcepathstyle; 2.8 has no such parameter and
	// uses path-style requests whenever regionendpoint is set.
	ForcePathStyle bool
	// Secure is false for plain http (default true).
	Secure     bool
	SkipVerify bool
	// Parameters are all of the driver's parameters as read, for the
	// ones not modelled here.
	Parameters map[string]any
}

// Prefix is the key prefix of the layout: rootdirectory with trailing
// slashes removed, followed by "/docker/registry/v2", with all leading
// slashes removed, as the driver builds its keys. An interior "//" stays.
func (s S3) Prefix() string {
	return strings.TrimLeft(strings.TrimRight(s.RootDirectory, "/")+"/"+regstore.DefaultLayoutRoot, "/")
}

// Redis is the redis section, in either shape: 2.8's single addr or v3's
// addrs list (go-redis UniversalOptions inline).
type Redis struct {
	// Addrs holds v3's addrs, or 2.8's addr. Empty: redis not configured.
	Addrs    []string
	Username string // v3 only
	Password string
	DB       int
	// MasterName is v3's sentinel master name.
	MasterName                             string
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	TLS                                    RedisTLS
	// Shape is "2.8" when the section has addr, "v3" when it has addrs.
	Shape string
}

// RedisTLS is redis.tls: v3's certificate, key and rootcas, and 2.8's
// enabled.
type RedisTLS struct {
	Enabled          bool
	Certificate, Key string
	RootCAs          []string
}

// Configured reports whether the registry would use redis.
func (r Redis) Configured() bool { return len(r.Addrs) > 0 }

// Proxy is the proxy section: a pull-through cache of RemoteURL.
type Proxy struct {
	RemoteURL string
}

// Load reads the config file at path with the process environment.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil, err
	}
	c, err := Parse(data, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse reads a config from YAML with the environment env ("NAME=value"
// strings, as [os.Environ] returns), as the registry does.
func Parse(data []byte, env []string) (*Config, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	if err := checkVersion(doc["version"]); err != nil {
		return nil, err
	}
	c := &Config{}
	t, err := newTree(doc)
	if err != nil {
		return nil, err
	}
	if err := t.applyEnv(env, &c.Warnings); err != nil {
		return nil, err
	}
	if err := c.readStorage(t.storage); err != nil {
		return nil, err
	}
	if err := c.readRedis(t.redis); err != nil {
		return nil, err
	}
	if err := c.readProxy(t.proxy); err != nil {
		return nil, err
	}
	if c.Storage.Cache == CacheRedis && !c.Redis.Configured() {
		return nil, errors.New("storage.cache.blobdescriptor is redis but the redis section has no addr (2.8) or addrs (v3): the registry would not start (redis configuration required)")
	}
	return c, nil
}

func checkVersion(v any) error {
	switch v := v.(type) {
	case string:
		if v == "0.1" {
			return nil
		}
	case float64:
		if v == 0.1 {
			return nil
		}
	}
	if v == nil {
		v = ""
	}
	return fmt.Errorf("unsupported version: %q (the registry reads only version: 0.1)", fmt.Sprint(v))
}

// nonDrivers are the storage keys that are not a driver.
var nonDrivers = []string{"maintenance", "cache", "delete", "redirect", "tag"}

func (c *Config) readStorage(st map[string]any) error {
	var drivers []string
	for k := range st {
		if !slices.Contains(nonDrivers, k) {
			drivers = append(drivers, k)
		}
	}
	slices.Sort(drivers)
	switch len(drivers) {
	case 0:
		return errors.New("no storage driver in the storage section (want filesystem or s3)")
	case 1:
	default:
		return fmt.Errorf("multiple storage drivers specified in configuration or environment: %s (the registry would not start)", strings.Join(drivers, ", "))
	}
	name := drivers[0]
	params, err := asMap(st[name], "storage."+name)
	if err != nil {
		return err
	}
	switch name {
	case "filesystem":
		c.Storage.Driver = "filesystem"
		root, err := str(params, "rootdirectory", "storage.filesystem")
		if err != nil {
			return err
		}
		if root == "" {
			root = DefaultRootDirectory
		}
		c.Storage.Filesystem.RootDirectory = root
	case "s3", "s3aws":
		c.Storage.Driver = "s3"
		if c.Storage.S3, err = readS3(params); err != nil {
			return err
		}
	default:
		return fmt.Errorf("storage driver %q: %w (regstore operates on filesystem and s3)", name, ErrUnsupportedDriver)
	}
	if d, ok := st["delete"]; ok {
		m, err := asMap(d, "storage.delete")
		if err != nil {
			return err
		}
		if c.Storage.Delete, err = boolean(m, "enabled", "storage.delete", false); err != nil {
			return err
		}
	}
	if mt, ok := st["maintenance"]; ok {
		m, err := asMap(mt, "storage.maintenance")
		if err != nil {
			return err
		}
		if ro, ok := m["readonly"]; ok {
			y, isYAML := ro.(yamlMap)
			if !isYAML {
				return errors.New("storage.maintenance.readonly was made by an environment variable naming one of its keys: the registry would not start (readonly config key must contain additional keys); set REGISTRY_STORAGE_MAINTENANCE_READONLY='{enabled: true}' instead")
			}
			e, ok := y["enabled"].(bool)
			if !ok {
				return errors.New("storage.maintenance.readonly.enabled must be a boolean: the registry would not start")
			}
			c.Storage.ReadOnly = e
		}
	}
	if ca, ok := st["cache"]; ok {
		m, err := asMap(ca, "storage.cache")
		if err != nil {
			return err
		}
		kind, err := str(m, "blobdescriptor", "storage.cache")
		if err != nil {
			return err
		}
		if kind == "" {
			if kind, err = str(m, "layerinfo", "storage.cache"); err != nil {
				return err
			}
		}
		switch kind {
		case CacheNone, CacheInMemory, CacheRedis:
			c.Storage.Cache = kind
		default:
			c.Warnings = append(c.Warnings, fmt.Sprintf("unknown cache type %q: the registry runs without a blob-descriptor cache", kind))
		}
	}
	return nil
}

func readS3(p map[string]any) (S3, error) {
	s := S3{Secure: true, Parameters: p}
	var err error
	for key, dst := range map[string]*string{"bucket": &s.Bucket, "region": &s.Region,
		"regionendpoint": &s.RegionEndpoint, "accesskey": &s.AccessKey, "secretkey": &s.SecretKey,
		"rootdirectory": &s.RootDirectory} {
		if *dst, err = str(p, key, "storage.s3"); err != nil {
			return s, err
		}
	}
	for key, b := range map[string]struct {
		dst *bool
		def bool
	}{"forcepathstyle": {&s.ForcePathStyle, false}, "secure": {&s.Secure, true}, "skipverify": {&s.SkipVerify, false}} {
		if *b.dst, err = boolean(p, key, "storage.s3", b.def); err != nil {
			return s, err
		}
	}
	if s.Bucket == "" {
		return s, errors.New("storage.s3: no bucket parameter provided")
	}
	if s.Region == "" {
		return s, errors.New("storage.s3: no region parameter provided")
	}
	return s, nil
}

func (c *Config) readRedis(m map[string]any) error {
	r := &c.Redis
	if v, ok := m["addrs"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("redis.addrs must be a list, like [host:6379], got %v", v)
		}
		for _, a := range list {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("redis.addrs: %v is not a string", a)
			}
			r.Addrs = append(r.Addrs, s)
		}
		r.Shape = "v3"
	}
	addr, err := str(m, "addr", "redis")
	if err != nil {
		return err
	}
	if addr != "" && len(r.Addrs) == 0 {
		r.Addrs, r.Shape = []string{addr}, "2.8"
	}
	for key, dst := range map[string]*string{"username": &r.Username, "password": &r.Password, "mastername": &r.MasterName} {
		if *dst, err = str(m, key, "redis"); err != nil {
			return err
		}
	}
	switch db := m["db"].(type) {
	case nil:
	case int:
		r.DB = db
	default:
		return fmt.Errorf("redis.db must be an integer, got %v", db)
	}
	for key, dst := range map[string]*time.Duration{"dialtimeout": &r.DialTimeout, "readtimeout": &r.ReadTimeout, "writetimeout": &r.WriteTimeout} {
		if *dst, err = duration(m[key], "redis."+key); err != nil {
			return err
		}
	}
	if t, ok := m["tls"]; ok && t != nil {
		tm, err := asMap(t, "redis.tls")
		if err != nil {
			return err
		}
		if r.TLS.Enabled, err = boolean(tm, "enabled", "redis.tls", false); err != nil {
			return err
		}
		if r.TLS.Certificate, err = str(tm, "certificate", "redis.tls"); err != nil {
			return err
		}
		if r.TLS.Key, err = str(tm, "key", "redis.tls"); err != nil {
			return err
		}
		if cas, ok := tm["rootcas"].([]any); ok {
			for _, ca := range cas {
				r.TLS.RootCAs = append(r.TLS.RootCAs, fmt.Sprint(ca))
			}
		}
	}
	return nil
}

func (c *Config) readProxy(m map[string]any) error {
	var err error
	c.Proxy.RemoteURL, err = str(m, "remoteurl", "proxy")
	return err
}

// ---- value helpers ----

// yamlMap is a mapping read from YAML below a driver's parameters: the
// registry holds it with non-string keys, so no environment variable can
// reach into it.
type yamlMap map[string]any

func asMap(v any, where string) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return v, nil
	case yamlMap:
		return v, nil
	default:
		return nil, fmt.Errorf("%s must be a mapping, got %v", where, v)
	}
}

func str(m map[string]any, key, where string) (string, error) {
	switch v := m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int, float64, bool:
		return fmt.Sprint(v), nil
	default:
		return "", fmt.Errorf("%s.%s must be a string, got %v", where, key, v)
	}
}

// boolean reads a bool that may also be written as a string, as the s3
// driver accepts.
func boolean(m map[string]any, key, where string, def bool) (bool, error) {
	switch v := m[key].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s.%s: %q is not a boolean", where, key, v)
		}
		return b, nil
	default:
		return false, fmt.Errorf("%s.%s must be a boolean, got %v", where, key, v)
	}
}

func duration(v any, where string) (time.Duration, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int:
		return time.Duration(v), nil
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		return d, nil
	default:
		return 0, fmt.Errorf("%s must be a duration, got %v", where, v)
	}
}

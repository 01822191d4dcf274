package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/regstore/regstore/config"
)

// removingCommands remove blob data or _layers links, which a registry's
// blob-descriptor cache may still believe exist.
var removingCommands = map[string]bool{"gc": true, "rm": true, "check": true}

const restartFlag = "registry-restart-after"

func addRestartFlag(fset *flag.FlagSet, name string) {
	if removingCommands[name] {
		fset.Bool(restartFlag, false, "go on although the registry serving the tree keeps an inmemory blob-descriptor\ncache (or one regstore cannot reach): you restart the registry right after")
	}
}

// registry is what regstore knows of a registry serving the tree.
type registry struct {
	cfg    *config.Config
	source string // how it was found: "config FILE", "process 123 (registry serve FILE)"
}

// findRegistry returns the registry serving the tree at root: the one
// --config names, or a registry process on this machine whose config's
// rootdirectory is root; nil when none is seen.
func (inv *invocation) findRegistry(root string) *registry {
	if inv.config != nil {
		return &registry{cfg: inv.config, source: "config " + inv.config.Path}
	}
	return findRegistryProcess(root)
}

// findRegistryProcess reads /proc/*/cmdline for "registry serve CONFIG" or
// "docker-registry serve CONFIG" (or REGISTRY_CONFIGURATION_PATH in the
// process's environment), reads CONFIG with the process's environment,
// through the process's own root (/proc/PID/root: a registry in a
// container names paths inside it), and compares its rootdirectory with
// root as files, not as strings. A registry process whose config cannot be
// read is passed over: which tree it serves is unknown (give --config).
func findRegistryProcess(root string) *registry {
	want, err := os.Stat(treeRootDir(root))
	if err != nil {
		return nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		pid := filepath.Base(filepath.Dir(p))
		if pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if base := filepath.Base(args[0]); base != "registry" && base != "docker-registry" {
			continue
		}
		if len(args) < 2 || args[1] != "serve" {
			continue
		}
		proc := filepath.Join("/proc", pid)
		env := readEnviron(filepath.Join(proc, "environ"))
		cfgPath := ""
		if len(args) > 2 {
			cfgPath = args[2]
		}
		if cfgPath == "" {
			for _, e := range env {
				if v, ok := strings.CutPrefix(e, "REGISTRY_CONFIGURATION_PATH="); ok {
					cfgPath = v
				}
			}
		}
		if cfgPath != "" && !filepath.IsAbs(cfgPath) {
			if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err == nil {
				cfgPath = filepath.Join(cwd, cfgPath)
			}
		}
		source := fmt.Sprintf("process %s (%s serve %s)", pid, filepath.Base(args[0]), cfgPath)
		data, err := os.ReadFile(filepath.Join(proc, "root", cfgPath))
		if err != nil {
			data, err = os.ReadFile(cfgPath)
		}
		if err != nil {
			continue
		}
		cfg, err := config.Parse(data, env)
		if err != nil || cfg.Storage.Driver != "filesystem" {
			continue // it does not serve a directory, or does not start
		}
		cfg.Path = cfgPath
		rd := cfg.Storage.Filesystem.RootDirectory
		if !filepath.IsAbs(rd) {
			if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err == nil {
				rd = filepath.Join(cwd, rd)
			}
		}
		fi, err := os.Stat(filepath.Join(proc, "root", rd))
		if err != nil {
			fi, err = os.Stat(rd)
		}
		if err == nil && os.SameFile(fi, want) {
			return &registry{cfg: cfg, source: source}
		}
	}
	return nil
}

func readEnviron(p string) []string {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// treeRootDir is the rootdirectory of the tree at root (root itself, or
// three levels up when root is the v2 folder), cleaned and with symbolic
// links resolved, for comparing.
func treeRootDir(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		return root
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	if strings.HasSuffix(abs, filepath.FromSlash("/docker/registry/v2")) {
		abs = filepath.Dir(filepath.Dir(filepath.Dir(abs)))
	}
	return abs
}

// invalidator removes a registry's cache entries for what regstore
// removed. A nil *invalidator does nothing.
type invalidator struct {
	client redis.UniversalClient
	errs   []error
}

// guardRemoval is called by a command about to remove blob data or layer
// links from the tree at root. It says what a registry seen serving the
// tree means, refuses (unless --registry-restart-after) when that
// registry's cache cannot be kept coherent, and returns the invalidator
// for a redis cache.
func (inv *invocation) guardRemoval(ctx context.Context, root string, restart bool) (*invalidator, error) {
	reg := inv.findRegistry(root)
	if reg == nil {
		return nil, nil
	}
	c := reg.cfg
	cacheNote := map[string]string{
		config.CacheNone:     "it keeps no blob-descriptor cache",
		config.CacheRedis:    "its redis blob-descriptor cache forgets what is removed",
		config.CacheInMemory: "it keeps an inmemory blob-descriptor cache",
	}[c.Storage.Cache]
	if c.Storage.ReadOnly {
		inv.warnf("a registry (%s) serves this tree in read-only maintenance mode: nothing writes to it meanwhile; %s.", reg.source, cacheNote)
	} else {
		inv.warnf("a registry (%s) serves this tree: it may write while this runs, and what was written within the grace window is kept; %s.", reg.source, cacheNote)
	}
	if c.Proxy.RemoteURL != "" {
		inv.warnf("that registry is a pull-through cache of %s: it also removes content itself when it expires, and fetches again on demand what is removed", c.Proxy.RemoteURL)
	}
	switch {
	case c.Storage.Cache == config.CacheRedis:
		iv, err := newInvalidator(ctx, c.Redis)
		if err != nil {
			if restart {
				inv.warnf("the registry's redis cache cannot be reached (%v): going on (--%s); its entries for what is removed stay, and a restart does not clear redis: flush them yourself", err, restartFlag)
				return nil, nil
			}
			return nil, fmt.Errorf("the registry serving this tree (%s) caches blob descriptors in redis, which regstore cannot reach: %w", reg.source, err)
		}
		return iv, nil
	case c.Storage.Cache == config.CacheInMemory && c.Storage.ReadOnly:
		// Leaving read-only mode means a config change, hence a restart,
		// which empties the cache.
		return nil, nil
	case c.Storage.Cache == config.CacheInMemory:
		msg := fmt.Sprintf("the registry serving this tree (%s) keeps an inmemory blob-descriptor cache (storage.cache.blobdescriptor: inmemory). "+
			"It answers \"this blob exists\" from that cache without looking at the tree, so after regstore removes blob data or layer links "+
			"clients skip uploading those blobs again and it accepts manifests whose blobs are gone. Nothing outside the process can clear that cache: "+
			"stop the registry (or put it in read-only maintenance mode) while this runs and start it after, or restart it right after this command; "+
			"pass --%s to go on", reg.source, restartFlag)
		if !restart {
			return nil, errors.New(msg)
		}
		inv.warnf("--%s: restart the registry (%s) as soon as this command ends; until then it may answer from its cache for removed blobs", restartFlag, reg.source)
		return nil, nil
	}
	return nil, nil
}

func newInvalidator(ctx context.Context, r config.Redis) (*invalidator, error) {
	opts := &redis.UniversalOptions{Addrs: r.Addrs, Username: r.Username, Password: r.Password, DB: r.DB,
		MasterName: r.MasterName, DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout}
	if r.TLS.Enabled || r.TLS.Certificate != "" || len(r.TLS.RootCAs) > 0 {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if r.TLS.Certificate != "" {
			cert, err := tls.LoadX509KeyPair(r.TLS.Certificate, r.TLS.Key)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if len(r.TLS.RootCAs) > 0 {
			pool := x509.NewCertPool()
			for _, ca := range r.TLS.RootCAs {
				pem, err := os.ReadFile(ca)
				if err != nil {
					return nil, err
				}
				pool.AppendCertsFromPEM(pem)
			}
			tc.RootCAs = pool
		}
		opts.TLSConfig = tc
	}
	client := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		client.Close()
		return nil, err
	}
	return &invalidator{client: client}, nil
}

// The registry's cache keys (the same in 2.8 and v3).
func blobKey(d digest.Digest) string                  { return "blobs::" + string(d) }
func repoSetKey(repo string) string                   { return "repository::" + repo + "::blobs" }
func repoBlobKey(repo string, d digest.Digest) string { return repoSetKey(repo) + "::" + string(d) }

// blobRemoved forgets blob d everywhere: the global descriptor (which
// alone makes every lookup miss) and each repository's membership and
// descriptor.
func (iv *invalidator) blobRemoved(ctx context.Context, d digest.Digest) {
	if iv == nil {
		return
	}
	iv.note(iv.client.Del(ctx, blobKey(d)).Err())
	suffix := "::blobs::" + string(d)
	iter := iv.client.Scan(ctx, 0, "repository::*"+suffix, 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		repo := strings.TrimSuffix(strings.TrimPrefix(key, "repository::"), suffix)
		iv.layerLinkRemoved(ctx, repo, d)
	}
	iv.note(iter.Err())
}

// layerLinkRemoved forgets that repository repo holds blob d.
func (iv *invalidator) layerLinkRemoved(ctx context.Context, repo string, d digest.Digest) {
	if iv == nil {
		return
	}
	iv.note(iv.client.SRem(ctx, repoSetKey(repo), string(d)).Err())
	iv.note(iv.client.Del(ctx, repoBlobKey(repo, d)).Err())
}

// repositoryRemoved forgets every blob of repository repo.
func (iv *invalidator) repositoryRemoved(ctx context.Context, repo string) {
	if iv == nil {
		return
	}
	members, err := iv.client.SMembers(ctx, repoSetKey(repo)).Result()
	iv.note(err)
	for _, m := range members {
		iv.note(iv.client.Del(ctx, repoBlobKey(repo, digest.Digest(m))).Err())
	}
	iv.note(iv.client.Del(ctx, repoSetKey(repo)).Err())
	iter := iv.client.Scan(ctx, 0, repoSetKey(repo)+"::*", 1000).Iterator()
	for iter.Next(ctx) {
		iv.note(iv.client.Del(ctx, iter.Val()).Err())
	}
	iv.note(iter.Err())
}

func (iv *invalidator) note(err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		iv.errs = append(iv.errs, err)
	}
}

// close reports the first failure, if any.
func (iv *invalidator) close() error {
	if iv == nil {
		return nil
	}
	iv.client.Close()
	if len(iv.errs) > 0 {
		return fmt.Errorf("the registry's redis cache may still hold entries for removed blobs (%d failures, the first: %w): flush its blobs::* and repository::* keys, or the registry may accept manifests whose blobs are gone", len(iv.errs), iv.errs[0])
	}
	return nil
}

// flagSet reports whether the boolean flag name is defined and set.
func flagSet(fset *flag.FlagSet, name string) bool {
	f := fset.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

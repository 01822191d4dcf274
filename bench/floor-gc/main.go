// Command floor-gc does only the I/O a mark-and-sweep garbage collection of
// a registry tree cannot avoid, to show how far a real collector is from
// it: it lists the blob prefix directories (blobs/sha256/<hex2>/), walks
// the repositories (listing each directory above them once, and each
// repository's _manifests/tags, _manifests/revisions/sha256 and
// _layers/sha256), reads each tag's current link, and reads and decodes
// (encoding/json) each revision's manifest once, however many repositories
// hold it. It keeps the marked digests in a set of 32-byte keys, so that
// its memory is that of a compact mark phase. Two workers share the repositories.
//
// It is not a collector: it does not judge links, follow index children or
// referrers, or compute what to delete. Its output is one line: wall time
// and what it did.
//
//	floor-gc [-workers 2] ROOT
//
// ROOT is the registry's rootdirectory (holding docker/registry/v2).
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type counts struct {
	dirs, prefixes, blobs, repos, tags, revisions, manifests, bytes atomic.Int64
}

// manifest is the part of any image manifest or index a collector reads.
type manifest struct {
	Config    *struct{ Digest string }  `json:"config"`
	Layers    []struct{ Digest string } `json:"layers"`
	Manifests []struct{ Digest string } `json:"manifests"`
	Subject   *struct{ Digest string }  `json:"subject"`
}

func main() {
	workers := flag.Int("workers", 2, "workers")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: floor-gc [-workers N] ROOT")
		os.Exit(2)
	}
	v2 := filepath.Join(flag.Arg(0), "docker", "registry", "v2")
	start := time.Now()
	var c counts
	var mu sync.Mutex
	seen := map[key]bool{}   // manifests decoded
	marked := map[key]bool{} // what they reference
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	// Blob prefixes, shared between the workers.
	prefixes, err := os.ReadDir(filepath.Join(v2, "blobs", "sha256"))
	if err != nil {
		fail(err)
	}
	c.dirs.Add(1)
	var repos []string
	var wg sync.WaitGroup
	next := make(chan string)
	for range *workers {
		wg.Go(func() {
			for job := range next {
				if p, ok := strings.CutPrefix(job, "prefix:"); ok {
					ents, err := os.ReadDir(p)
					if err != nil {
						fail(err)
						continue
					}
					c.dirs.Add(1)
					c.prefixes.Add(1)
					c.blobs.Add(int64(len(ents)))
					continue
				}
				if err := repo(job, v2, &c, &mu, seen, marked); err != nil {
					fail(err)
				}
			}
		})
	}
	// Repositories: a directory holding _manifests is one; its other
	// non-underscore subdirectories may hold more.
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		c.dirs.Add(1)
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if e.Name() == "_manifests" {
				repos = append(repos, dir)
				next <- dir
				continue
			}
			if strings.HasPrefix(e.Name(), "_") {
				continue
			}
			if err := walk(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range prefixes {
		next <- "prefix:" + filepath.Join(v2, "blobs", "sha256", p.Name())
	}
	if err := walk(filepath.Join(v2, "repositories")); err != nil {
		fail(err)
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, "floor-gc:", err)
		os.Exit(1)
	default:
	}
	fmt.Printf("floor-gc: %.3f s wall; %d directories listed, %d blob prefixes, %d blobs, %d repositories, %d tags read, %d revisions, %d manifests decoded (%d bytes), %d digests marked\n",
		time.Since(start).Seconds(), c.dirs.Load(), c.prefixes.Load(), c.blobs.Load(), len(repos), c.tags.Load(),
		c.revisions.Load(), c.manifests.Load(), c.bytes.Load(), len(marked))
}

// repo reads one repository as a collector must.
func repo(dir, v2 string, c *counts, mu *sync.Mutex, seen, marked map[key]bool) error {
	c.repos.Add(1)
	tags, err := readDir(filepath.Join(dir, "_manifests", "tags"), c)
	if err != nil {
		return err
	}
	for _, t := range tags {
		b, err := os.ReadFile(filepath.Join(dir, "_manifests", "tags", t.Name(), "current", "link"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		c.tags.Add(1)
		mu.Lock()
		marked[keyOf(string(b))] = true
		mu.Unlock()
	}
	revs, err := readDir(filepath.Join(dir, "_manifests", "revisions", "sha256"), c)
	if err != nil {
		return err
	}
	for _, r := range revs {
		c.revisions.Add(1)
		d := "sha256:" + r.Name()
		k := keyOf(d)
		mu.Lock()
		done := seen[k]
		seen[k] = true
		mu.Unlock()
		if done {
			continue
		}
		b, err := os.ReadFile(filepath.Join(v2, "blobs", "sha256", r.Name()[:2], r.Name(), "data"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		c.manifests.Add(1)
		c.bytes.Add(int64(len(b)))
		mu.Lock()
		marked[k] = true
		if m.Config != nil {
			marked[keyOf(m.Config.Digest)] = true
		}
		for _, l := range m.Layers {
			marked[keyOf(l.Digest)] = true
		}
		for _, l := range m.Manifests {
			marked[keyOf(l.Digest)] = true
		}
		mu.Unlock()
	}
	_, err = readDir(filepath.Join(dir, "_layers", "sha256"), c)
	return err
}

func readDir(dir string, c *counts) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		c.dirs.Add(1)
	}
	return ents, err
}

// key is a sha256 digest's 32 bytes (zero for anything else).
type key [32]byte

func keyOf(d string) (k key) {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) == 64 {
		hex.Decode(k[:], []byte(h))
	}
	return k
}

// Command floor-walk does only the I/O a link-level check of a registry
// tree cannot avoid, to show how far a real checker is from it: it lists
// every directory of the tree once, reads every link file, and stats every
// blob's data file. Two workers share the directories.
//
// It is not a checker: it judges nothing. Its output is one line: wall time
// and what it did.
//
//	floor-walk [-workers 2] ROOT
//
// ROOT is the registry's rootdirectory (holding docker/registry/v2).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	workers := flag.Int("workers", 2, "workers")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: floor-walk [-workers N] ROOT")
		os.Exit(2)
	}
	root := filepath.Join(flag.Arg(0), "docker", "registry", "v2")
	start := time.Now()
	var dirs, links, linkBytes, blobs, blobBytes, entries atomic.Int64
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }

	// list lists dir, reads its links and stats its data files, and
	// returns its subdirectories.
	list := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			fail(err)
			return nil
		}
		dirs.Add(1)
		entries.Add(int64(len(ents)))
		var sub []string
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir():
				sub = append(sub, p)
			case e.Name() == "link":
				b, err := os.ReadFile(p)
				if err != nil {
					fail(err)
					continue
				}
				links.Add(1)
				linkBytes.Add(int64(len(b)))
			case e.Name() == "data":
				fi, err := os.Stat(p)
				if err != nil {
					fail(err)
					continue
				}
				blobs.Add(1)
				blobBytes.Add(fi.Size())
			}
		}
		return sub
	}
	// A shared stack of directories to list; the walk ends when it is
	// empty and no worker is listing.
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	stack, active := []string{root}, 0
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			mu.Lock()
			defer mu.Unlock()
			for {
				for len(stack) == 0 && active > 0 {
					cond.Wait()
				}
				if len(stack) == 0 {
					cond.Broadcast()
					return
				}
				d := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				active++
				mu.Unlock()
				sub := list(d)
				mu.Lock()
				stack = append(stack, sub...)
				active--
				cond.Broadcast()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "floor-walk:", firstErr)
		os.Exit(1)
	}
	fmt.Printf("floor-walk: %.3f s wall; %d directories listed (%d entries), %d links read (%d bytes), %d blob data files stat'ed (%d bytes)\n",
		time.Since(start).Seconds(), dirs.Load(), entries.Load(), links.Load(), linkBytes.Load(), blobs.Load(), blobBytes.Load())
}

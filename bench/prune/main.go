// Command prune measures the two ways to plan a retention prune, for
// bench/prune/run.sh:
//
//	prune api  -url http://127.0.0.1:PORT [-c N] [-keep-last N]
//	prune plan -root DIR [-keep-last N] [-nobytes]
//
// "api" is the route API-based retention tools take (registry-cli, regctl
// and regbot, GitLab's and Harbor's cleanup policies): list the catalog,
// list each repository's tags, HEAD each tag's manifest for its digest,
// GET each distinct manifest for its config descriptor, and GET each
// distinct config for its "created" date, then keep the newest N tags by
// that date. Manifests and configs are fetched once per digest (a cache a
// careful tool has); -c requests run at once.
//
// "plan" is regstore's plan on the tree: [retain.Decide] with keep-last N
// and no grace window, which lists each tag's current link and its
// modification time, and (unless -nobytes) plans the garbage collection
// after the prune with [gc.Mark] on the tree without the removed tags.
//
// Each prints one JSON object: what was found and the wall time.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/retain"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: prune api|plan [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "api":
		err = runAPI(os.Args[2:])
	case "plan":
		err = runPlan(os.Args[2:])
	case "mark":
		err = runMark(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "prune:", err)
		os.Exit(1)
	}
}

type result struct {
	Mode         string  `json:"mode"`
	Repositories int     `json:"repositories"`
	Tags         int     `json:"tags"`
	Remove       int     `json:"remove"`
	Requests     int64   `json:"requests,omitempty"`
	Bytes        int64   `json:"bytes,omitempty"`
	Seconds      float64 `json:"seconds"`
}

func emit(r result) error {
	return json.NewEncoder(os.Stdout).Encode(r)
}

// ---- the plan on the tree ----

func runPlan(args []string) error {
	fset := flag.NewFlagSet("plan", flag.ExitOnError)
	root := fset.String("root", "", "the registry's rootdirectory")
	keepLast := fset.Int("keep-last", 5, "tags kept per repository")
	noBytes := fset.Bool("nobytes", false, "skip the garbage-collection plan")
	workers := fset.Int("workers", 0, "retain.Options.Workers (0: its default)")
	cpuprofile := fset.String("cpuprofile", "", "write a CPU profile to `file`")
	fset.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	d, err := regstore.OpenDir(*root)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := regstore.Open(d, regstore.ReadOnly())
	if err != nil {
		return err
	}
	plan, err := retain.Decide(context.Background(), s, &retain.Policy{Rules: []retain.Rule{{KeepLast: *keepLast}}},
		retain.Options{Grace: -1, NoBytes: *noBytes, Workers: *workers})
	if err != nil {
		return err
	}
	repos := map[string]bool{}
	for _, t := range plan.Tags {
		repos[t.Repository] = true
	}
	mode := "plan"
	if *noBytes {
		mode = "plan-nobytes"
	}
	return emit(result{Mode: mode, Repositories: len(repos), Tags: len(plan.Tags), Remove: plan.Removed(),
		Bytes: plan.Bytes, Seconds: time.Since(start).Seconds()})
}

// runMark times gc.Mark (DeleteUntagged, no grace window) on the tree as
// it is: the collection planned for its own sake, for comparison with the
// plan's share of it.
func runMark(args []string) error {
	fset := flag.NewFlagSet("mark", flag.ExitOnError)
	root := fset.String("root", "", "the registry's rootdirectory")
	fset.Parse(args)
	start := time.Now()
	d, err := regstore.OpenDir(*root)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := regstore.Open(d, regstore.ReadOnly())
	if err != nil {
		return err
	}
	plan, err := gc.Mark(context.Background(), s, gc.Options{DeleteUntagged: true, Grace: -1})
	if err != nil {
		return err
	}
	return emit(result{Mode: "gc.Mark alone", Bytes: plan.Bytes, Seconds: time.Since(start).Seconds()})
}

// ---- the API route ----

const acceptManifests = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

type apiClient struct {
	base     string
	http     *http.Client
	requests atomic.Int64
}

func (c *apiClient) do(method, path string, accept string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return resp, body, nil
}

// paged GETs path and every page its Link headers name, decoding each.
func (c *apiClient) paged(path string, each func([]byte) error) error {
	for path != "" {
		resp, body, err := c.do(http.MethodGet, path, "")
		if err != nil {
			return err
		}
		if err := each(body); err != nil {
			return err
		}
		path = ""
		if l := resp.Header.Get("Link"); l != "" {
			if i, j := strings.IndexByte(l, '<'), strings.IndexByte(l, '>'); i >= 0 && j > i {
				u, err := url.Parse(l[i+1 : j])
				if err != nil {
					return err
				}
				path = u.RequestURI()
			}
		}
	}
	return nil
}

type apiTag struct {
	repo, tag, digest string
	created           time.Time
}

func runAPI(args []string) error {
	fset := flag.NewFlagSet("api", flag.ExitOnError)
	base := fset.String("url", "", "the registry, http://HOST:PORT")
	conc := fset.Int("c", 1, "requests at once")
	keepLast := fset.Int("keep-last", 5, "tags kept per repository")
	fset.Parse(args)
	tr := &http.Transport{MaxIdleConnsPerHost: *conc + 1, MaxConnsPerHost: *conc + 1}
	c := &apiClient{base: strings.TrimSuffix(*base, "/"), http: &http.Client{Transport: tr, Timeout: time.Minute}}
	start := time.Now()

	var repos []string
	err := c.paged("/v2/_catalog?n=1000", func(b []byte) error {
		var page struct{ Repositories []string }
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		repos = append(repos, page.Repositories...)
		return nil
	})
	if err != nil {
		return err
	}

	// Fan out over repositories; within one, tags one after the other, as
	// the tools do. Manifests and configs are fetched once per digest.
	var (
		mu        sync.Mutex
		manifests = map[string]*once[string]{}    // manifest digest -> config digest
		configs   = map[string]*once[time.Time]{} // config digest -> created
		all       [][]apiTag
		firstErr  error
	)
	all = make([][]apiTag, len(repos))
	configOf := func(repo, d string) (string, error) {
		mu.Lock()
		o := manifests[d]
		if o == nil {
			o = &once[string]{}
			manifests[d] = o
		}
		mu.Unlock()
		return o.do(func() (string, error) {
			_, body, err := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+d, acceptManifests)
			if err != nil {
				return "", err
			}
			var m struct {
				Config struct{ Digest string }
			}
			if err := json.Unmarshal(body, &m); err != nil {
				return "", err
			}
			return m.Config.Digest, nil // "" for an index: no config, no date
		})
	}
	createdOf := func(repo, d string) (time.Time, error) {
		mu.Lock()
		o := configs[d]
		if o == nil {
			o = &once[time.Time]{}
			configs[d] = o
		}
		mu.Unlock()
		return o.do(func() (time.Time, error) {
			_, body, err := c.do(http.MethodGet, "/v2/"+repo+"/blobs/"+d, "")
			if err != nil {
				return time.Time{}, err
			}
			var cfg struct{ Created time.Time }
			if err := json.Unmarshal(body, &cfg); err != nil {
				return time.Time{}, err
			}
			return cfg.Created, nil
		})
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for i := range work {
				tags, err := c.repoTags(repos[i], configOf, createdOf)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				all[i] = tags
				mu.Unlock()
			}
		})
	}
	for i := range repos {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	res := result{Mode: fmt.Sprintf("api-c%d", *conc), Repositories: len(repos)}
	for _, tags := range all {
		res.Tags += len(tags)
		// Newest first by config date; the tools' tie-break is the tag name.
		slices.SortFunc(tags, func(a, b apiTag) int {
			if c := b.created.Compare(a.created); c != 0 {
				return c
			}
			return strings.Compare(b.tag, a.tag)
		})
		if len(tags) > *keepLast {
			res.Remove += len(tags) - *keepLast
		}
	}
	res.Requests = c.requests.Load()
	res.Seconds = time.Since(start).Seconds()
	return emit(res)
}

func (c *apiClient) repoTags(repo string, configOf func(string, string) (string, error), createdOf func(string, string) (time.Time, error)) ([]apiTag, error) {
	var names []string
	err := c.paged("/v2/"+repo+"/tags/list", func(b []byte) error {
		var page struct{ Tags []string }
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		names = append(names, page.Tags...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []apiTag
	for _, tag := range names {
		resp, _, err := c.do(http.MethodHead, "/v2/"+repo+"/manifests/"+tag, acceptManifests)
		if err != nil {
			return nil, err
		}
		d := resp.Header.Get("Docker-Content-Digest")
		if d == "" {
			return nil, errors.New("no Docker-Content-Digest for " + repo + ":" + tag)
		}
		cfg, err := configOf(repo, d)
		if err != nil {
			return nil, err
		}
		t := apiTag{repo: repo, tag: tag, digest: d}
		if cfg != "" {
			if t.created, err = createdOf(repo, cfg); err != nil {
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// once computes a value once, for every goroutine that asks.
type once[T any] struct {
	o   sync.Once
	v   T
	err error
}

func (o *once[T]) do(f func() (T, error)) (T, error) {
	o.o.Do(func() { o.v, o.err = f() })
	return o.v, o.err
}

// Command gc generates the synthetic registry tree that bench/gc/run.sh
// garbage-collects with the real registry and with regstore: it fills a
// regstore.MemFS with regstoretest.Generate and copies it into -dir with
// regstoretest.WriteTree (no fsync: a benchmark fixture, not a live tree).
// It prints the generation statistics as JSON on stdout.
//
// With -count FILE it instead reads the JSON plan "regstore gc --json"
// printed and prints "<blobs> <manifests> <layer links> <marked>", for
// run.sh to compare with the registry's summary line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
)

func main() {
	var o regstoretest.GenerateOptions
	dir := flag.String("dir", "", "directory to write the tree into (the registry's rootdirectory); must not exist or be empty")
	flag.IntVar(&o.Repositories, "repos", 1000, "repositories")
	flag.IntVar(&o.ManifestsPerRepo, "manifests", 20, "manifests per repository")
	flag.IntVar(&o.TagsPerRepo, "tags", 20, "tags per repository")
	flag.IntVar(&o.LayersPerManifest, "layers", 5, "layers per manifest")
	flag.IntVar(&o.BlobSize, "blobsize", 256, "random bytes per layer")
	flag.Float64Var(&o.SharedFraction, "shared", 0.3, "fraction of layers drawn from a shared pool")
	flag.Float64Var(&o.UntaggedFraction, "untagged", 0.25, "fraction of manifests left untagged")
	flag.Uint64Var(&o.Seed, "seed", 1, "random seed")
	count := flag.String("count", "", "count what the regstore gc JSON plan in `file` lists, and exit")
	flag.Parse()
	if *count != "" {
		if err := countPlan(*count); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		return
	}
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, o); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string, o regstoretest.GenerateOptions) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	mem := regstore.NewMemFS()
	s, err := regstore.Open(mem)
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := regstoretest.Generate(s, o)
	if err != nil {
		return err
	}
	generated := time.Since(start)
	start = time.Now()
	if err := regstoretest.WriteTree(mem, dir); err != nil {
		return err
	}
	written := time.Since(start)
	fmt.Fprintf(os.Stderr, "gen: generated in %s, written in %s\n", generated.Round(time.Millisecond), written.Round(time.Millisecond))
	st.Untagged = nil // long; the counts say enough
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Options regstoretest.GenerateOptions
		Stats   regstoretest.GenerateStats
	}{o, st})
}

func countPlan(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var plan struct {
		Blobs      []string            `json:"blobs"`
		LayerLinks map[string][]string `json:"layerLinks"`
		Manifests  map[string][]string `json:"manifests"`
		Marked     int                 `json:"marked"`
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	sum := func(m map[string][]string) (n int) {
		for _, v := range m {
			n += len(v)
		}
		return n
	}
	fmt.Println(len(plan.Blobs), sum(plan.Manifests), sum(plan.LayerLinks), plan.Marked)
	return nil
}

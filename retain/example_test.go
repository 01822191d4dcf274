package retain_test

import (
	"context"
	"fmt"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/retain"
)

// Keep the two most recent tags and every release tag. build-1 goes, but
// its manifest is shared with the release v1.0 (pushed at the same time:
// the greater name ranks first), so the collection after the prune keeps
// it; build-0's manifest, config and layer go.
func ExampleDecide() {
	mem := regstore.NewMemFS()
	store, _ := regstore.Open(mem)
	repo, _ := store.Repository("team/app")
	now := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
	pushed := func(tag string, daysAgo int) {
		mem.Chtimes(store.Layout().TagCurrent("team/app", tag), now.AddDate(0, 0, -daysAgo))
	}
	for i, tags := range [][]string{{"build-0"}, {"build-1", "v1.0"}, {"build-2"}, {"build-3"}} {
		img := regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(uint64(i), 100)}}
		if _, err := regstoretest.PushImage(repo, img, tags...); err != nil {
			fmt.Println(err)
			return
		}
		for _, tag := range tags {
			pushed(tag, 10-i)
		}
	}

	policy, err := retain.ParsePolicy("retention.yaml", []byte(`
rules:
  - repositories: "team/**"
    keep-last: 2
    keep-tags: ['v[0-9.]+']
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := retain.Decide(context.Background(), store, policy, retain.Options{Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range plan.Tags {
		fmt.Printf("%-6s %-7s pushed %s  %s (manifest kept: %v)\n", t.Action, t.Tag, t.Pushed.Format("01-02"), t.Rule, t.ManifestKept)
	}
	fmt.Println("the collection after frees", plan.Bytes, "bytes")
	if err := retain.Prune(context.Background(), store, plan, retain.Options{}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// keep   build-3 pushed 01-03  keep-last 2 (manifest kept: true)
	// keep   build-2 pushed 01-02  keep-last 2 (manifest kept: true)
	// keep   v1.0    pushed 01-01  keep-tags v[0-9.]+ (manifest kept: true)
	// remove build-1 pushed 01-01  rank 4 > keep-last 2, no keep-tags match (rule at line 3) (manifest kept: true)
	// remove build-0 pushed 12-31  rank 5 > keep-last 2, no keep-tags match (rule at line 3) (manifest kept: false)
	// the collection after frees 860 bytes
}

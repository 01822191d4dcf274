package check_test

import (
	"context"
	"fmt"
	"log"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
)

func ExampleProblems() {
	ctx := context.Background()
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := repo.PushImage(regstore.Image{}, "v1"); err != nil {
		log.Fatal(err)
	}
	// Damage it as a tool that writes current links without index
	// entries does.
	if err := regstoretest.TagWithoutIndexEntry(store, "team/app", "v1"); err != nil {
		log.Fatal(err)
	}

	var problems []check.Problem
	for p, err := range check.Problems(ctx, store, check.Options{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Kind, p.Repository, p.Tag)
		problems = append(problems, p)
	}

	// Repair does only what is chosen; a dry run first says what it would do.
	opts := check.RepairOptions{RestoreTagIndex: true, DryRun: true}
	actions, err := check.Repair(ctx, store, problems, opts)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range actions {
		fmt.Println(a.Op, a.DryRun)
	}
	opts.DryRun = false
	if _, err := check.Repair(ctx, store, problems, opts); err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, err := range check.Problems(ctx, store, check.Options{}) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n, "problems after the repair")
	// Output:
	// tag-not-in-index team/app v1
	// write-link true
	// 0 problems after the repair
}

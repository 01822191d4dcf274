package gc_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
)

func Example() {
	ctx := context.Background()
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	// v1, then v1 again: the first image is untagged now.
	for _, layer := range []string{"old layer", "new layer"} {
		img := regstore.Image{Layers: []regstore.ImageLayer{regstore.LayerBytes([]byte(layer))}}
		if _, err := repo.PushImage(img, "v1"); err != nil {
			log.Fatal(err)
		}
	}

	// Mark changes nothing: it says what Sweep removes. Grace < 0 turns
	// the window off (only for a tree nothing writes to); the default
	// spares everything modified in the last hour.
	opts := gc.Options{DeleteUntagged: true, Grace: -1}
	plan, err := gc.Mark(ctx, store, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("untagged manifests:", len(plan.Manifests["team/app"]))
	fmt.Println("blobs:", len(plan.Blobs), "bytes:", plan.Bytes)

	// Sweep re-checks every item before it removes it.
	res, err := gc.Sweep(ctx, store, plan, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed blobs:", len(res.Blobs), "skipped:", len(res.Skipped))
	again, err := gc.Mark(ctx, store, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after the sweep:", len(again.Blobs), "blobs to remove")
	// Output:
	// untagged manifests: 1
	// blobs: 2 bytes: 399
	// removed blobs: 2 skipped: 0
	// after the sweep: 0 blobs to remove
}

func ExamplePurgeUploads() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	// An upload a client started eight days ago and never finished.
	started := time.Now().Add(-8 * 24 * time.Hour)
	if err := regstoretest.HalfWrittenUpload(store, "team/app", "0d6d8e7c-1111-4a7e-9b0e-6f1d2a3b4c5d", started); err != nil {
		log.Fatal(err)
	}
	purged, err := gc.PurgeUploads(context.Background(), store, gc.PurgeOptions{OlderThan: 168 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range purged {
		fmt.Println(u.Repository.Name(), strings.Split(u.ID, "-")[0])
	}
	// Output:
	// team/app 0d6d8e7c
}

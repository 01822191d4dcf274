// Command quickstart builds a small registry tree with regstore in a
// temporary directory, the way `docker push` would have left it, and prints
// what a registry would serve from it; then untags an image, collects the
// garbage and checks the tree.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
)

func main() {
	dir, err := os.MkdirTemp("", "regstore-quickstart-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	backend, err := regstore.OpenDir(dir)
	if err != nil {
		return err
	}
	defer backend.Close()
	store, err := regstore.Open(backend)
	if err != nil {
		return err
	}

	// Two repositories sharing a base layer; one tag moved to a new image.
	base := regstoretest.NewLayer(map[string]string{"etc/os-release": "ID=quickstart\n"})
	app, err := store.Repository("team/app")
	if err != nil {
		return err
	}
	if _, err := regstoretest.WriteImage(app, regstoretest.Image{Layers: []regstoretest.Layer{base}}, "v1", "latest"); err != nil {
		return err
	}
	v2 := regstoretest.NewLayer(map[string]string{"app/version": "2\n"})
	if _, err := regstoretest.WriteImage(app, regstoretest.Image{Layers: []regstoretest.Layer{base, v2}}, "v2", "latest"); err != nil {
		return err
	}
	web, err := store.Repository("team/app/web")
	if err != nil {
		return err
	}
	if _, err := regstoretest.WriteImage(web, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest, Layers: []regstoretest.Layer{base}}, "1.0"); err != nil {
		return err
	}

	fmt.Printf("registry tree in %s/%s\n", dir, regstore.DefaultLayoutRoot)
	if err := inspect(store); err != nil {
		return err
	}

	// Untag v1, then collect garbage: its manifest, and the layers and
	// config only it used, go. The grace window is off because nothing
	// else writes this tree.
	v1, err := app.Tag("v1")
	if err != nil {
		return err
	}
	if err := v1.Delete(); err != nil {
		return err
	}
	ctx := context.Background()
	opts := gc.Options{DeleteUntagged: true, Grace: -1}
	plan, err := gc.Mark(ctx, store, opts)
	if err != nil {
		return err
	}
	fmt.Printf("\nafter untagging team/app:v1, gc frees %d bytes: %d blobs, %d manifests\n",
		plan.Bytes, len(plan.Blobs), len(plan.Manifests["team/app"]))
	if _, err := gc.Sweep(ctx, store, plan, opts); err != nil {
		return err
	}
	problems := 0
	for p, err := range check.Problems(ctx, store, check.Options{}) {
		if err != nil {
			return err
		}
		fmt.Println("check:", p.Message)
		problems++
	}
	fmt.Printf("check after gc: %d problems\n", problems)
	return inspect(store)
}

// inspect prints every repository with its tags, manifests and layers.
func inspect(store *regstore.Store) error {
	for repo, err := range store.Repositories() {
		if err != nil {
			return err
		}
		fmt.Println(repo.Name())
		for tag, err := range repo.Tags() {
			if err != nil {
				return err
			}
			m, err := tag.Resolve()
			if err != nil {
				return err
			}
			fmt.Printf("  tag %-8s -> %s\n", tag.Name(), m.Digest())
		}
		for d, err := range repo.Manifests() {
			if err != nil {
				return err
			}
			m, err := repo.Manifest(d)
			if err != nil {
				return err
			}
			fmt.Printf("  manifest %s %s (%d bytes)\n", d, m.MediaType(), m.Size())
		}
		for d, err := range repo.Layers() {
			if err != nil {
				return err
			}
			fmt.Printf("  layer %s\n", d)
		}
	}
	var n, bytes int64
	for d, err := range store.Blobs() {
		if err != nil {
			return err
		}
		b, err := store.Blob(d)
		if err != nil {
			return err
		}
		n++
		bytes += b.Size()
	}
	fmt.Printf("%d blobs, %d bytes\n", n, bytes)
	return nil
}

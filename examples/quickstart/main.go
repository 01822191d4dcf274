// Command quickstart builds a small registry tree with regstore in a
// temporary directory and prints what is in it.
package main

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/regstore/regstore"
)

func main() {
	dir, err := os.MkdirTemp("", "regstore-quickstart-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	backend, err := regstore.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	store, err := regstore.Open(backend)
	if err != nil {
		log.Fatal(err)
	}
	for _, content := range []string{"layer one", "layer two"} {
		b, err := store.PutBlob(strings.NewReader(content), "", -1)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("blob %s %d bytes at %s\n", b.Digest(), b.Size(), b.Path())
	}
}

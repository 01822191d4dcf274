package regstoretest_test

import (
	"fmt"
	"log"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
)

func ExampleWriteImage() {
	s, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	r, err := s.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	// A real, pullable image: gzipped tar layers, a config naming their
	// diff IDs. In a test, regstoretest.Push(t, r, img, "v1") does the same
	// and fails the test on an error.
	img := regstoretest.Image{Layers: []regstoretest.Layer{
		regstoretest.NewLayer(map[string]string{"etc/os-release": "ID=example\n"}),
		regstoretest.RandomLayer(1, 1024),
	}}
	m, err := regstoretest.WriteImage(r, img, "v1")
	if err != nil {
		log.Fatal(err)
	}
	again, err := regstoretest.WriteImage(r, img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MediaType(), len(m.Layers()), again.Digest() == m.Digest())
	// Output:
	// application/vnd.oci.image.manifest.v1+json 2 true
}

func ExampleWriteIndex() {
	s, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	r, err := s.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	var children []*regstore.Manifest
	for i, arch := range []string{"amd64", "arm64"} {
		m, err := regstoretest.WriteImage(r, regstoretest.Image{Architecture: arch,
			Layers: []regstoretest.Layer{regstoretest.RandomLayer(uint64(i), 64)}})
		if err != nil {
			log.Fatal(err)
		}
		children = append(children, m)
	}
	idx, err := regstoretest.WriteIndex(r, "", children, "multi")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(idx.MediaType())
	for _, c := range idx.Children() {
		fmt.Println(c.Platform.OS, c.Platform.Architecture)
	}
	// Output:
	// application/vnd.oci.image.index.v1+json
	// linux amd64
	// linux arm64
}

func ExampleGenerate() {
	s, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	// A synthetic tree for benchmarks and scale tests: equal options give
	// byte-identical trees.
	st, err := regstoretest.Generate(s, regstoretest.GenerateOptions{Repositories: 3, ManifestsPerRepo: 4, TagsPerRepo: 3,
		LayersPerManifest: 2, UntaggedFraction: 0.25, SharedFraction: 0.5, BlobSize: 64, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Repositories, st.Manifests, st.Tags, st.UntaggedManifests)
	for r, err := range s.Repositories() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Name())
	}
	// Output:
	// 3 12 9 3
	// org000/app000
	// org000/app001
	// org000/app002
}

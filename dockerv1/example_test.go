package dockerv1_test

import (
	"context"
	"fmt"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/regstore/regstore/regstoretest"
)

func ExampleConvert() {
	// A v1 tree (here in memory; os.DirFS or a bucket work the same).
	v1fs := regstore.NewMemFS()
	if _, err := regstoretest.WriteV1Tree(v1fs, "."); err != nil {
		fmt.Println(err)
		return
	}
	src, err := dockerv1.Open(v1fs, ".")
	if err != nil {
		fmt.Println(err)
		return
	}
	dst, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{DryRun: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range rep.Tags {
		fmt.Println(t.Repository+":"+t.Tag, "->", t.Target, t.Status)
	}
	// Output:
	// library/broken:missing -> broken skipped
	// library/corrupt:bad -> corrupt would-convert
	// library/partial:wip -> partial skipped
	// library/ubuntu:14.04 -> ubuntu would-convert
	// library/ubuntu:latest -> ubuntu would-convert
	// myorg/MyApp:latest -> myorg/myapp would-convert
	// myorg/app:1.0 -> myorg/app would-convert
	// myorg/app:latest -> myorg/app would-convert
}

func ExampleStorage_Check() {
	v1fs := regstore.NewMemFS()
	if _, err := regstoretest.WriteV1Tree(v1fs, "."); err != nil {
		fmt.Println(err)
		return
	}
	src, err := dockerv1.Open(v1fs, ".")
	if err != nil {
		fmt.Println(err)
		return
	}
	probs, err := src.Check(context.Background(), dockerv1.CheckOptions{Checksums: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range probs {
		if p.Repository != "" {
			fmt.Println(p.Kind, p.Repository+":"+p.Tag)
		} else {
			fmt.Println(p.Kind, "image", p.Image[:12])
		}
	}
	// Output:
	// checksum-mismatch image 01b66ce14ad2
	// unfinished image a4bcf8a398b7
	// missing-image library/broken:missing
}

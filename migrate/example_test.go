package migrate_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
)

// exampleStore is a store in memory with team/app:v1, an image of one
// layer.
func exampleStore() (*regstore.Store, *regstore.Manifest) {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	m, err := regstoretest.WriteImage(repo, regstoretest.Image{Layers: []regstoretest.Layer{
		regstoretest.NewLayer(map[string]string{"etc/hello": "hello"})}}, "v1")
	if err != nil {
		log.Fatal(err)
	}
	return store, m
}

func ExampleExportOCILayout() {
	store, m := exampleStore()
	repo, _ := store.Repository("team/app")
	// Any WriteFS: regstore.OpenDir(dir) for a directory that skopeo, crane
	// or umoci read as oci:DIR.
	dst := regstore.NewMemFS()
	stats, err := migrate.ExportOCILayout(context.Background(), repo, dst, migrate.ExportOptions{Tags: []string{"v1"}})
	if err != nil {
		log.Fatal(err)
	}
	idx, err := fs.ReadFile(dst, "index.json")
	if err != nil {
		log.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest      digest.Digest     `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		log.Fatal(err)
	}
	e := index.Manifests[0]
	fmt.Println(e.Digest == m.Digest(), e.Annotations["org.opencontainers.image.ref.name"])
	fmt.Println("blobs:", stats.Blobs, "manifests:", stats.Manifests)
	// Output:
	// true v1
	// blobs: 3 manifests: 1
}

func ExampleImportDockerArchive() {
	// A "docker save app:v1" archive (legacy form: manifest.json, the
	// config, one uncompressed layer tar), built in memory.
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	_ = lw.WriteHeader(&tar.Header{Name: "etc/hello", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	_, _ = lw.Write([]byte("hello"))
	_ = lw.Close()
	config := fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`,
		digest.FromBytes(layer.Bytes()))
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	for _, f := range []struct{ name, body string }{
		{"layer/layer.tar", layer.String()},
		{"config.json", config},
		{"manifest.json", `[{"Config":"config.json","RepoTags":["app:v1"],"Layers":["layer/layer.tar"]}]`},
	} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.Close()

	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("app")
	if err != nil {
		log.Fatal(err)
	}
	res, err := migrate.ImportDockerArchive(context.Background(), repo, &archive, migrate.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range res.Tags {
		fmt.Println(t.Tag, t.RefName)
	}
	fmt.Println(len(res.Manifests), "image")
	// Output:
	// v1 app:v1
	// 1 image
}

func ExampleImportSkopeoDir() {
	// A "skopeo copy docker://... dir:DIR" directory: manifest.json,
	// version, and each blob named by its hex digest. fstest.MapFS here;
	// os.DirFS(dir) for one on disk.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := digest.FromBytes(config)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(config))
	dir := fstest.MapFS{
		"manifest.json": {Data: []byte(manifest)},
		"version":       {Data: []byte("Directory Transport Version: 1.1\n")},
		cd.Encoded():    {Data: config},
	}

	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	m, err := migrate.ImportSkopeoDir(context.Background(), repo, dir, "v1", migrate.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Digest() == digest.FromString(manifest))
	// Output:
	// true
}

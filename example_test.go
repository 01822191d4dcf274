package regstore_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// examplePush stores an OCI image with one layer in repo, as docker push
// does: the config and layer blobs first, then the manifest and its tags.
func examplePush(repo *regstore.Repository, layer string, tags ...string) (*regstore.Manifest, error) {
	config, err := repo.PutBlob(strings.NewReader(`{"architecture":"amd64","os":"linux"}`), "", -1)
	if err != nil {
		return nil, err
	}
	l, err := repo.PutBlob(strings.NewReader(layer), "", -1)
	if err != nil {
		return nil, err
	}
	raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		config.Digest(), config.Size(), l.Digest(), l.Size())
	return repo.PutManifest(regstore.MediaTypeOCIManifest, []byte(raw), tags...)
}

// exampleHex matches the hex part of a digest.
var exampleHex = regexp.MustCompile(`[0-9a-f]{64,128}`)

// exampleShort abbreviates the digests in s, for readable output.
func exampleShort(s string) string {
	return exampleHex.ReplaceAllStringFunc(s, func(hex string) string { return hex[:8] + "…" })
}

func ExampleOpen() {
	// Open a store over any backend: here memory. With the default layout
	// root, the backend is the registry's rootdirectory.
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	l := store.Layout()
	fmt.Println(l.Root())
	fmt.Println(exampleShort(l.BlobData(digest.FromString("hello"))))
	fmt.Println(l.TagCurrent("team/app", "latest"))

	// A backend opened on the v2 directory itself.
	v2, err := regstore.Open(regstore.NewMemFS(), regstore.WithLayoutRoot("."))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v2.Layout().Repositories())
	// Output:
	// docker/registry/v2
	// docker/registry/v2/blobs/sha256/2c/2cf24dba…/data
	// docker/registry/v2/repositories/team/app/_manifests/tags/latest/current/link
	// repositories
}

func ExampleOpenDir() {
	// The registry's rootdirectory, for example /var/lib/registry.
	dir, err := os.MkdirTemp("", "registry-")
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
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := repo.PutBlob(strings.NewReader("hello"), "", -1); err != nil {
		log.Fatal(err)
	}

	// The files are where a registry started on dir finds them.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			fmt.Println(exampleShort(filepath.ToSlash(rel)))
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// docker/registry/v2/blobs/sha256/2c/2cf24dba…/data
	// docker/registry/v2/repositories/library/hello/_layers/sha256/2cf24dba…/link
}

func ExampleNewMemFS() {
	mem := regstore.NewMemFS()
	store, err := regstore.Open(mem)
	if err != nil {
		log.Fatal(err)
	}
	b, err := store.PutBlob(strings.NewReader("hello"), "", -1)
	if err != nil {
		log.Fatal(err)
	}

	// A MemFS is an fs.FS: read it with the io/fs functions.
	data, err := fs.ReadFile(mem, b.Path())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %q\n", exampleShort(b.Path()), data)
	// Output:
	// docker/registry/v2/blobs/sha256/2c/2cf24dba…/data: "hello"
}

func ExampleStore_PutBlob() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	// With no digest, the content is stored under the digest it hashes to.
	b, err := store.PutBlob(strings.NewReader("hello"), "", -1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Digest(), b.Size())

	// With a digest (or a size), content that does not match is refused
	// and nothing is stored.
	_, err = store.PutBlob(strings.NewReader("hello, world"), digest.FromString("goodbye"), -1)
	fmt.Println(errors.Is(err, regstore.ErrDigestMismatch))
	_, err = store.Blob(digest.FromString("hello, world"))
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5
	// true
	// true
}

func ExampleStore_Blob() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.PutBlob(strings.NewReader("hello"), "", -1); err != nil {
		log.Fatal(err)
	}

	b, err := store.Blob(digest.FromString("hello"))
	if err != nil {
		log.Fatal(err)
	}
	f, err := b.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q %s\n", data, b.Descriptor().MediaType)

	_, err = store.Blob(digest.FromString("missing"))
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// "hello" application/octet-stream
	// true
}

func ExampleRepository_PutBlob() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	app, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	// A completed upload: the data, then the repository's link to it.
	b, err := app.PutBlob(strings.NewReader("layer"), "", -1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(exampleShort(b.Digest().String()))

	got, err := app.Blob(b.Digest())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Size())

	// The blob is in team/app only.
	web, err := store.Repository("team/web")
	if err != nil {
		log.Fatal(err)
	}
	_, err = web.Blob(b.Digest())
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// sha256:dac1d7cf…
	// 5
	// true
}

func ExampleRepository_PutManifest() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	// Blobs first: the registry refuses a manifest whose config or layers
	// are not in the repository.
	config, err := repo.PutBlob(strings.NewReader(`{"architecture":"amd64","os":"linux"}`), "", -1)
	if err != nil {
		log.Fatal(err)
	}
	layer, err := repo.PutBlob(strings.NewReader("layer"), "", -1)
	if err != nil {
		log.Fatal(err)
	}
	raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		config.Digest(), config.Size(), layer.Digest(), layer.Size())

	m, err := repo.PutManifest(regstore.MediaTypeOCIManifest, []byte(raw), "latest")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(exampleShort(m.Digest().String()), m.MediaType())

	// What the push wrote besides the blobs: the manifest's data, its
	// revision link, the tag's index entry and current link.
	for e, err := range store.Walk() {
		if err != nil {
			log.Fatal(err)
		}
		if e.Kind == regstore.RevisionLink || e.Kind == regstore.TagIndexLink || e.Kind == regstore.TagCurrentLink ||
			e.Kind == regstore.BlobData && e.Digest == m.Digest() {
			fmt.Println(exampleShort(strings.TrimPrefix(e.Path, store.Layout().Root()+"/")))
		}
	}

	// A manifest naming a blob the repository does not have is refused.
	missing := strings.Replace(raw, layer.Digest().String(), digest.FromString("other").String(), 1)
	_, err = repo.PutManifest(regstore.MediaTypeOCIManifest, []byte(missing))
	fmt.Println(errors.Is(err, regstore.ErrManifestBlobUnknown))
	// Output:
	// sha256:24929d77… application/vnd.oci.image.manifest.v1+json
	// blobs/sha256/24/24929d77…/data
	// repositories/library/hello/_manifests/revisions/sha256/24929d77…/link
	// repositories/library/hello/_manifests/tags/latest/current/link
	// repositories/library/hello/_manifests/tags/latest/index/sha256/24929d77…/link
	// true
}

func ExampleRepository_Manifest() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	pushed, err := examplePush(repo, "layer")
	if err != nil {
		log.Fatal(err)
	}

	m, err := repo.Manifest(pushed.Digest())
	if err != nil {
		log.Fatal(err)
	}
	config, _ := m.Config()
	fmt.Println(m.MediaType())
	fmt.Println("config", exampleShort(config.Digest.String()))
	for _, l := range m.Layers() {
		fmt.Println("layer", exampleShort(l.Digest.String()), l.Size)
	}

	_, err = repo.Manifest(digest.FromString("not pushed"))
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// config sha256:9d99a751…
	// layer sha256:dac1d7cf… 5
	// true
}

func ExampleTag_Set() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	v1, err := examplePush(repo, "one", "stable")
	if err != nil {
		log.Fatal(err)
	}
	v2, err := examplePush(repo, "two")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("v1", exampleShort(v1.Digest().String()))
	fmt.Println("v2", exampleShort(v2.Digest().String()))

	// Move the tag, as docker tag + docker push would.
	stable, err := repo.Tag("stable")
	if err != nil {
		log.Fatal(err)
	}
	if err := stable.Set(v2.Digest()); err != nil {
		log.Fatal(err)
	}
	m, err := stable.Resolve()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stable", exampleShort(m.Digest().String()))
	// Output:
	// v1 sha256:3591a26d…
	// v2 sha256:6e27d2fe…
	// stable sha256:6e27d2fe…
}

func ExampleTag_Resolve() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := examplePush(repo, "layer", "latest"); err != nil {
		log.Fatal(err)
	}

	for _, name := range []string{"latest", "missing"} {
		tag, err := repo.Tag(name)
		if err != nil {
			log.Fatal(err)
		}
		m, err := tag.Resolve()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Println(tag, "not found")
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Println(tag, exampleShort(m.Digest().String()))
		}
	}
	// Output:
	// library/hello:latest sha256:24929d77…
	// library/hello:missing not found
}

func ExampleTag_History() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	// Push latest twice: the tag's index keeps both.
	for _, layer := range []string{"one", "two"} {
		if _, err := examplePush(repo, layer, "latest"); err != nil {
			log.Fatal(err)
		}
	}
	latest, err := repo.Tag("latest")
	if err != nil {
		log.Fatal(err)
	}
	for d, err := range latest.History() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(exampleShort(d.String()))
	}
	// Output:
	// sha256:3591a26d…
	// sha256:6e27d2fe…
}

func ExampleRepository_DeleteManifest() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	old, err := examplePush(repo, "one", "v1", "latest")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := examplePush(repo, "two", "v2"); err != nil {
		log.Fatal(err)
	}

	// The tags on the manifest go with it; other tags stay.
	if err := repo.DeleteManifest(old.Digest()); err != nil {
		log.Fatal(err)
	}
	for tag, err := range repo.Tags() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("tag", tag.Name())
	}
	_, err = repo.Manifest(old.Digest())
	fmt.Println("manifest gone:", errors.Is(err, fs.ErrNotExist))
	// The data stays until garbage collection.
	_, err = store.Blob(old.Digest())
	fmt.Println("data kept:", err == nil)
	// Output:
	// tag v2
	// manifest gone: true
	// data kept: true
}

func ExampleStore_Repositories() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"a", "a/0", "a/c", "a-b", "a.b", "b"} {
		repo, err := store.Repository(name)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := examplePush(repo, "layer", "latest"); err != nil {
			log.Fatal(err)
		}
	}
	// The registry's catalog order: a nested name that sorts before "_"
	// (here a/0) comes before its parent.
	for repo, err := range store.Repositories() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(repo.Name())
	}
	// Output:
	// a/0
	// a
	// a/c
	// a-b
	// a.b
	// b
}

func ExampleStore_Catalog() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"a", "a/0", "a/c", "a-b", "a.b"} {
		repo, err := store.Repository(name)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := examplePush(repo, "layer"); err != nil {
			log.Fatal(err)
		}
	}
	// Page through the catalog two names at a time, as /v2/_catalog?n=2
	// with the Link header's last=.
	last := ""
	for {
		page, err := store.Catalog(2, last)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(page)
		if len(page) < 2 {
			break
		}
		last = page[len(page)-1]
	}
	// Output:
	// [a/0 a]
	// [a/c a-b]
	// [a.b]
}

func ExampleRepository_Tags() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := examplePush(repo, "layer", "latest", "1.0", "1.0.1", "1.0-rc"); err != nil {
		log.Fatal(err)
	}
	for tag, err := range repo.Tags() {
		if err != nil {
			log.Fatal(err)
		}
		d, err := tag.Digest()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tag.Name(), exampleShort(d.String()))
	}
	// Output:
	// 1.0 sha256:24929d77…
	// 1.0-rc sha256:24929d77…
	// 1.0.1 sha256:24929d77…
	// latest sha256:24929d77…
}

func ExampleStore_Walk() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := examplePush(repo, "layer", "latest"); err != nil {
		log.Fatal(err)
	}
	for e, err := range store.Walk() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-16s %s\n", e.Kind, exampleShort(strings.TrimPrefix(e.Path, store.Layout().Root()+"/")))
	}
	// Output:
	// blob data        blobs/sha256/24/24929d77…/data
	// blob data        blobs/sha256/9d/9d99a751…/data
	// blob data        blobs/sha256/da/dac1d7cf…/data
	// layer link       repositories/library/hello/_layers/sha256/9d99a751…/link
	// layer link       repositories/library/hello/_layers/sha256/dac1d7cf…/link
	// revision link    repositories/library/hello/_manifests/revisions/sha256/24929d77…/link
	// tag current link repositories/library/hello/_manifests/tags/latest/current/link
	// tag index link   repositories/library/hello/_manifests/tags/latest/index/sha256/24929d77…/link
}

func ExampleParseManifest() {
	// An OCI index stored without a mediaType field: the registry reads it
	// as an index because it has "manifests".
	raw := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","size":5,` +
		`"platform":{"architecture":"arm64","os":"linux"}}]}`)
	m, err := regstore.ParseManifest(raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MediaType(), m.IsIndex())
	for _, c := range m.Children() {
		fmt.Println(exampleShort(c.Digest.String()), c.Platform.OS, c.Platform.Architecture)
	}

	_, err = regstore.ParseManifest([]byte(`{"schemaVersion":3}`))
	fmt.Println(errors.Is(err, regstore.ErrManifestInvalid))
	// Output:
	// application/vnd.oci.image.index.v1+json true
	// sha256:2cf24dba… linux arm64
	// true
}

func ExampleError() {
	mem := regstore.NewMemFS()
	store, err := regstore.Open(mem)
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := examplePush(repo, "layer", "latest"); err != nil {
		log.Fatal(err)
	}
	// Break the tag's current link the way a hand edit would: with a
	// trailing newline. The registry answers such a tag with a 500.
	tag, err := repo.Tag("latest")
	if err != nil {
		log.Fatal(err)
	}
	d, err := tag.Digest()
	if err != nil {
		log.Fatal(err)
	}
	w, err := mem.Create(store.Layout().TagCurrent("library/hello", "latest"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(w, d.String()+"\n"); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}

	_, err = tag.Resolve()
	// Match the class with errors.Is ...
	fmt.Println("corrupt:", errors.Is(err, regstore.ErrCorruptLink))
	fmt.Println("not found:", errors.Is(err, fs.ErrNotExist))
	// ... and read the details with errors.As.
	var e *regstore.Error
	if errors.As(err, &e) {
		fmt.Println("op:", e.Op)
		fmt.Println("repository:", e.Repository)
		fmt.Println("reference:", e.Reference)
		fmt.Println("path:", strings.TrimPrefix(e.Path, store.Layout().Root()+"/"))
	}
	// Output:
	// corrupt: true
	// not found: false
	// op: resolve tag
	// repository: library/hello
	// reference: latest
	// path: repositories/library/hello/_manifests/tags/latest/current/link
}

func ExampleOpenPath() {
	// The registry's rootdirectory (or its docker/registry/v2 folder).
	dir, err := os.MkdirTemp("", "registry-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := regstore.OpenPath(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // releases the directory OpenPath opened
	repo, err := store.Repository("library/hello")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := repo.PushImage(regstore.Image{}, "latest"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Layout().Root())
	// Output:
	// docker/registry/v2
}

func ExampleRepository_PushImage() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	// An OCI image: the config, the layers (as stored: a gzipped tar
	// usually; any bytes here), tagged v1 and latest.
	m, err := repo.PushImage(regstore.Image{
		Config: []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`),
		Layers: []regstore.ImageLayer{regstore.LayerBytes([]byte("layer one")), regstore.LayerBytes([]byte("layer two"))},
	}, "v1", "latest")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MediaType())
	cfg, _ := m.Config()
	fmt.Println(cfg.MediaType)
	for _, l := range m.Layers() {
		fmt.Println(l.MediaType, l.Size)
	}

	// The same as Docker schema 2, as "docker push" writes it.
	d, err := repo.PushImage(regstore.Image{
		MediaType: regstore.MediaTypeDockerManifest,
		Config:    []byte(`{"architecture":"amd64","os":"linux"}`),
		Layers:    []regstore.ImageLayer{regstore.LayerBytes([]byte("layer one"))},
	}, "docker")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.MediaType(), d.Layers()[0].MediaType)
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// application/vnd.oci.image.config.v1+json
	// application/vnd.oci.image.layer.v1.tar+gzip 9
	// application/vnd.oci.image.layer.v1.tar+gzip 9
	// application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.image.rootfs.diff.tar.gzip
}

func ExampleBlob_ReadAll() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("team/app")
	if err != nil {
		log.Fatal(err)
	}
	m, err := repo.PushImage(regstore.Image{Config: []byte(`{"os":"linux"}`)}, "v1")
	if err != nil {
		log.Fatal(err)
	}
	cfg, _ := m.Config()
	b, err := repo.Blob(cfg.Digest)
	if err != nil {
		log.Fatal(err)
	}
	data, err := b.ReadAll(1 << 20) // a config: at most 1 MiB
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	_, err = b.ReadAll(4)
	fmt.Println(errors.Is(err, regstore.ErrBlobTooLarge))
	// Output:
	// {"os":"linux"}
	// true
}

func ExampleStore_DeleteRepository() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"team/app", "team/app/web"} {
		repo, err := store.Repository(name)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := repo.PushImage(regstore.Image{}, "v1"); err != nil {
			log.Fatal(err)
		}
	}
	// Deleting team/app leaves the nested team/app/web alone.
	if err := store.DeleteRepository("team/app"); err != nil {
		log.Fatal(err)
	}
	for repo, err := range store.Repositories() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(repo.Name())
	}
	err = store.DeleteRepository("team/app")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// team/app/web
	// true
}

func ExampleStore_MoveRepository() {
	store, err := regstore.Open(regstore.NewMemFS())
	if err != nil {
		log.Fatal(err)
	}
	repo, err := store.Repository("old/name")
	if err != nil {
		log.Fatal(err)
	}
	m, err := repo.PushImage(regstore.Image{}, "v1")
	if err != nil {
		log.Fatal(err)
	}
	// Links move; blob data stays where it is, shared.
	if err := store.MoveRepository("old/name", "new/name"); err != nil {
		log.Fatal(err)
	}
	moved, err := store.Repository("new/name")
	if err != nil {
		log.Fatal(err)
	}
	tag, err := moved.Tag("v1")
	if err != nil {
		log.Fatal(err)
	}
	got, err := tag.Resolve()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Digest() == m.Digest())
	for repo, err := range store.Repositories() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(repo.Name())
	}
	// Output:
	// true
	// new/name
}

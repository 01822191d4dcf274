// Command import is the regstore side of bench/import/run.sh.
//
//	import -gen DIR [-images N -layers N -layersize BYTES -seed N]
//	    writes an OCI image layout of N images with random, incompressible
//	    layers (gzip-stored), tagged img0, img1, ...
//	import -layout DIR -root DIR [-repo NAME -hardlink -trust -workers N]
//	    imports the layout into the registry tree at -root with
//	    migrate.ImportOCILayout and prints the time it took, the
//	    statistics and the tags' digests as JSON.
//	import -freeport
//	    prints a free TCP port on 127.0.0.1.
//	import -probe DIR
//	    measures, in DIR, what bounds an import: the latency of publishing
//	    one small file durably (write, fsync, rename, fsync of the
//	    directory) and the throughput of a 64 MiB write with fsync.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
)

func main() {
	gen := flag.String("gen", "", "write a generated OCI image layout to this directory")
	images := flag.Int("images", 5, "images in the generated layout")
	layers := flag.Int("layers", 24, "layers per image")
	layerSize := flag.Int("layersize", 2<<20, "random bytes per layer")
	seed := flag.Uint64("seed", 1, "random seed")
	layout := flag.String("layout", "", "OCI image layout to import")
	root := flag.String("root", "", "registry rootdirectory to import into")
	repo := flag.String("repo", "bench/app", "repository")
	hardLink := flag.Bool("hardlink", false, "publish blobs as hard links to the layout's files")
	trust := flag.Bool("trust", false, "with -hardlink, do not re-read linked files to verify them")
	workers := flag.Int("workers", 0, "blobs imported at once (0: the library's default)")
	freePort := flag.Bool("freeport", false, "print a free TCP port on 127.0.0.1")
	probe := flag.String("probe", "", "measure fsync latency and write throughput in this directory")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the import to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "import:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var err error
	switch {
	case *freePort:
		err = printFreePort()
	case *probe != "":
		err = probeDisk(*probe)
	case *gen != "":
		err = generate(*gen, *images, *layers, *layerSize, *seed)
	case *layout != "" && *root != "":
		err = importLayout(*layout, *root, *repo, migrate.ImportOptions{HardLink: *hardLink, TrustDigests: *trust, Workers: *workers})
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "import:", err)
		os.Exit(1)
	}
}

func probeDisk(dir string) error {
	d, err := os.MkdirTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	const n = 100
	start := time.Now()
	for i := range n {
		name := filepath.Join(d, fmt.Sprintf("f%d", i))
		f, err := os.Create(name + ".tmp")
		if err != nil {
			return err
		}
		f.Write([]byte("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
		if err := f.Sync(); err != nil {
			return err
		}
		f.Close()
		if err := os.Rename(name+".tmp", name); err != nil {
			return err
		}
		df, err := os.Open(d)
		if err != nil {
			return err
		}
		df.Sync()
		df.Close()
	}
	publish := time.Since(start) / n
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i * 131)
	}
	start = time.Now()
	f, err := os.Create(filepath.Join(d, "big"))
	if err != nil {
		return err
	}
	f.Write(buf)
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	mbps := 64 / time.Since(start).Seconds()
	fmt.Printf("durable small-file publish %.2f ms, write+fsync %.0f MiB/s\n", float64(publish.Microseconds())/1000, mbps)
	return nil
}

func printFreePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// generate writes the layout with plain os calls (it is the fixture, not
// what is measured).
func generate(dir string, images, layers, layerSize int, seed uint64) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(b []byte) (string, error) {
		sum := sha256.Sum256(b)
		hex := hex.EncodeToString(sum[:])
		return "sha256:" + hex, os.WriteFile(filepath.Join(blobs, hex), b, 0o644)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var index []descriptor
	total := 0
	for i := range images {
		var diffIDs []string
		var ls []descriptor
		for j := range layers {
			content := make([]byte, layerSize)
			for k := 0; k+8 <= len(content); k += 8 {
				v := rng.Uint64()
				for b := range 8 {
					content[k+b] = byte(v >> (8 * b))
				}
			}
			var tarBuf bytes.Buffer
			tw := tar.NewWriter(&tarBuf)
			name := fmt.Sprintf("data/img%d/layer%d", i, j)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)),
				ModTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
				return err
			}
			tw.Write(content)
			tw.Close()
			sum := sha256.Sum256(tarBuf.Bytes())
			diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.NoCompression) // random data does not compress
			zw.Write(tarBuf.Bytes())
			zw.Close()
			d, err := put(gz.Bytes())
			if err != nil {
				return err
			}
			total += gz.Len()
			ls = append(ls, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d, Size: gz.Len()})
		}
		config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
		cd, err := put(config)
		if err != nil {
			return err
		}
		manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: len(config)}, "layers": ls})
		md, err := put(manifest)
		if err != nil {
			return err
		}
		index = append(index, descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: len(manifest),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": fmt.Sprintf("img%d", i)}})
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": index})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"images": images, "layers": images * layers, "layer_bytes": total})
}

func importLayout(layout, root, repo string, opts migrate.ImportOptions) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	src, err := regstore.OpenDir(layout)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := regstore.OpenDir(root)
	if err != nil {
		return err
	}
	defer dst.Close()
	s, err := regstore.Open(dst)
	if err != nil {
		return err
	}
	r, err := s.Repository(repo)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := migrate.ImportOCILayout(context.Background(), r, src, opts)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	tags := map[string]string{}
	for _, t := range res.Tags {
		tags[t.Tag] = t.Digest.String()
	}
	out := json.NewEncoder(os.Stdout)
	return out.Encode(map[string]any{"seconds": elapsed.Seconds(), "stats": res.Stats, "tags": tags})
}

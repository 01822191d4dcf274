// Command v1 is the regstore side of bench/v1/run.sh.
//
//	v1 -gen DIR [-images N -layersize BYTES -repos N -seed N]
//	    writes a docker-registry (v1) storage tree: a chain of N images
//	    whose layers are plain tars of one file each, of compressible
//	    text-like data (about 3:1 with gzip -1), and -repos repositories
//	    tagging images along the chain (so ancestors are shared).
//	v1 -v1 DIR -root DIR [-workers N -uncompressed]
//	    converts the tree into the registry tree at -root with
//	    dockerv1.Convert and prints the time, the v1 layer bytes read and
//	    the throughput as JSON.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
)

func main() {
	gen := flag.String("gen", "", "write a generated v1 tree to this directory")
	images := flag.Int("images", 32, "images in the chain")
	layerSize := flag.Int("layersize", 8<<20, "bytes of file data per layer")
	repos := flag.Int("repos", 4, "repositories")
	seed := flag.Uint64("seed", 1, "random seed")
	v1dir := flag.String("v1", "", "v1 tree to convert")
	root := flag.String("root", "", "registry rootdirectory to convert into")
	workers := flag.Int("workers", 0, "layers converted at once (0: GOMAXPROCS)")
	uncompressed := flag.Bool("uncompressed", false, "store layers uncompressed")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the conversion to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "v1:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	switch {
	case *gen != "":
		err = generate(*gen, *images, *layerSize, *repos, *seed)
	case *v1dir != "" && *root != "":
		err = convert(*v1dir, *root, *workers, *uncompressed)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "v1:", err)
		os.Exit(1)
	}
}

func convert(v1dir, root string, workers int, uncompressed bool) error {
	src, err := dockerv1.Open(os.DirFS(v1dir), ".")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o777); err != nil {
		return err
	}
	d, err := regstore.OpenDir(root)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := regstore.Open(d)
	if err != nil {
		return err
	}
	t0 := time.Now()
	rep, err := dockerv1.Convert(context.Background(), s, src, dockerv1.ConvertOptions{Workers: workers, Uncompressed: uncompressed})
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	if rep.Stats.Skipped > 0 {
		return fmt.Errorf("%d tags skipped", rep.Stats.Skipped)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"seconds": secs, "layerBytes": rep.Stats.LayerBytes, "blobBytes": rep.Stats.BlobBytes,
		"layers": rep.Stats.Layers, "tags": rep.Stats.Converted,
		"MBps": float64(rep.Stats.LayerBytes) / 1e6 / secs,
	})
}

var words = []string{"the", "registry", "layer", "image", "docker", "usr", "lib", "share", "x86_64", "linux",
	"gnu", "python", "so", "conf", "etc", "bin", "README", "copyright", "debian", "changelog", "gz", "locale",
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\n", "\n", " ", " ", " ", "=", "/", "-", "_"}

// data is text-like bytes: words in random order, with a random byte in
// every 16 so that it compresses about as well as a filesystem does.
func data(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[rng.IntN(len(words))]...)
		if rng.IntN(16) == 0 {
			b = append(b, byte(rng.Uint32()))
		}
	}
	return b[:n]
}

func generate(dir string, images, layerSize, repos int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var ancestry []string
	created := time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range images {
		h := sha256.Sum256(fmt.Appendf(nil, "bench %d %d", seed, i))
		id := hex.EncodeToString(h[:])
		parent := ""
		if len(ancestry) > 0 {
			parent = ancestry[0]
		}
		ancestry = append([]string{id}, ancestry...)
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		body := data(rng, layerSize)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/layer-%03d.txt", i), Mode: 0o644, Size: int64(len(body)),
			ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		meta := map[string]any{"id": id, "created": created.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano),
			"container_config": map[string]any{"Cmd": []string{"/bin/sh", "-c", fmt.Sprintf("make layer %d", i)}},
			"docker_version":   "1.3.2", "architecture": "amd64", "os": "linux", "Size": tb.Len()}
		if parent != "" {
			meta["parent"] = parent
		}
		js, _ := json.Marshal(meta)
		anc, _ := json.Marshal(ancestry)
		sum := sha256.Sum256(append(append(js, '\n'), tb.Bytes()...))
		cs, _ := json.Marshal([]string{"sha256:" + hex.EncodeToString(sum[:])})
		idir := filepath.Join(dir, "images", id)
		if err := os.MkdirAll(idir, 0o777); err != nil {
			return err
		}
		for name, b := range map[string][]byte{"json": js, "ancestry": anc, "_checksum": cs, "layer": tb.Bytes()} {
			if err := os.WriteFile(filepath.Join(idir, name), b, 0o666); err != nil {
				return err
			}
		}
	}
	for r := range repos {
		rdir := filepath.Join(dir, "repositories", "library", fmt.Sprintf("bench%d", r))
		if err := os.MkdirAll(rdir, 0o777); err != nil {
			return err
		}
		// Repository r tags the image at (r+1)/repos of the chain.
		id := ancestry[len(ancestry)-1-((r+1)*images/repos-1)]
		if err := os.WriteFile(filepath.Join(rdir, "tag_latest"), []byte(id), 0o666); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(rdir, "taglatest_json"), fmt.Appendf(nil, `{"last_update": %d}`, 1400000000+r), 0o666); err != nil {
			return err
		}
	}
	return nil
}

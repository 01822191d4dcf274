// Command serve compares `regstore serve` with the registry v3 serving the
// same tree, in one run: manifest GETs per second (by tag, from several
// clients at once) and the throughput of pulling a large blob.
//
//	serve -regstore BIN [-registry BIN] [-images N] [-blobmb N] [-clients N] [-duration D]
//
// It writes a tree of N small images plus one image with a large,
// incompressible layer into a temporary directory with the regstore API,
// starts both servers read-only on loopback ports (each a process of its
// own, stopped by PID at the end), and prints one line per measurement and
// a JSON summary.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

func main() {
	regstoreBin := flag.String("regstore", "", "the regstore binary (required)")
	registryBin := flag.String("registry", "registry", "the distribution v3 registry binary")
	images := flag.Int("images", 200, "small images to serve manifests of")
	blobMB := flag.Int("blobmb", 512, "size of the large blob, MiB")
	clients := flag.Int("clients", 8, "concurrent clients for the manifest GETs")
	duration := flag.Duration("duration", 5*time.Second, "length of each manifest GET measurement")
	pulls := flag.Int("pulls", 3, "pulls of the large blob per server (the best counts)")
	flag.Parse()
	if *regstoreBin == "" {
		fmt.Fprintln(os.Stderr, "serve: -regstore is required")
		os.Exit(2)
	}
	if err := run(*regstoreBin, *registryBin, *images, *blobMB, *clients, *duration, *pulls); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

type result struct {
	Server          string  `json:"server"`
	ManifestGETsSec float64 `json:"manifestGetsPerSecond"`
	BlobMiBSec      float64 `json:"largeBlobMiBPerSecond"`
}

func run(regstoreBin, registryBin string, images, blobMB, clients int, duration time.Duration, pulls int) error {
	root, err := os.MkdirTemp("", "bench-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	fmt.Fprintf(os.Stderr, "writing %d images and a %d MiB blob into %s\n", images, blobMB, root)
	refs, big, err := writeTree(root, images, blobMB)
	if err != nil {
		return err
	}
	servers := []struct{ name, host string }{}
	rsHost, stopRS, err := start(regstoreBin, []string{"serve", "--read-only", "--quiet"}, root, "regstore")
	if err != nil {
		return err
	}
	defer stopRS()
	servers = append(servers, struct{ name, host string }{"regstore serve", rsHost})
	regHost, stopReg, err := start(registryBin, nil, root, "registry")
	if err != nil {
		return err
	}
	defer stopReg()
	servers = append(servers, struct{ name, host string }{"registry v3.1.2", regHost})

	var results []result
	for _, s := range servers {
		r := result{Server: s.name}
		// Warm up (file cache, connections), then measure.
		if _, err := manifestGETs(s.host, refs, clients, time.Second); err != nil {
			return err
		}
		if r.ManifestGETsSec, err = manifestGETs(s.host, refs, clients, duration); err != nil {
			return err
		}
		for i := 0; i <= pulls; i++ {
			// The first pull verifies the content (hashing bounds it), the
			// others only count bytes.
			v, err := pullBlob(s.host, big, i == 0)
			if err != nil {
				return err
			}
			if i > 0 {
				r.BlobMiBSec = max(r.BlobMiBSec, v)
			}
		}
		fmt.Printf("%-16s  manifest GETs/s: %8.0f   large blob pull: %7.0f MiB/s\n", s.name, r.ManifestGETsSec, r.BlobMiBSec)
		results = append(results, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"images": images, "blobMiB": blobMB, "clients": clients,
		"duration": duration.String(), "results": results})
}

type ref struct{ repo, tag string }

type blobRef struct {
	repo string
	d    digest.Digest
	size int64
}

// writeTree writes images small images (one small layer each, over 10
// repositories) and one image with a blobMB MiB random layer.
func writeTree(root string, images, blobMB int) ([]ref, blobRef, error) {
	d, err := regstore.OpenDir(root)
	if err != nil {
		return nil, blobRef{}, err
	}
	defer d.Close()
	s, err := regstore.Open(d)
	if err != nil {
		return nil, blobRef{}, err
	}
	push := func(repoName, tag string, layer io.Reader, size int64) (*regstore.Blob, error) {
		repo, err := s.Repository(repoName)
		if err != nil {
			return nil, err
		}
		cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"tag":%q}`, repoName+":"+tag))
		cb, err := repo.PutBlob(bytes.NewReader(cfg), "", -1)
		if err != nil {
			return nil, err
		}
		lb, err := repo.PutBlob(layer, "", size)
		if err != nil {
			return nil, err
		}
		m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
			Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cb.Digest(), Size: cb.Size()},
			Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: lb.Digest(), Size: lb.Size()}}}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		_, err = repo.PutManifest(v1.MediaTypeImageManifest, raw, tag)
		return lb, err
	}
	var refs []ref
	for i := range images {
		r := ref{fmt.Sprintf("bench/repo%d", i%10), "v" + strconv.Itoa(i)}
		layer := make([]byte, 1024)
		_, _ = rand.Read(layer)
		if _, err := push(r.repo, r.tag, bytes.NewReader(layer), int64(len(layer))); err != nil {
			return nil, blobRef{}, err
		}
		refs = append(refs, r)
	}
	size := int64(blobMB) << 20
	lb, err := push("bench/big", "latest", io.LimitReader(rand.Reader, size), size)
	if err != nil {
		return nil, blobRef{}, err
	}
	return refs, blobRef{"bench/big", lb.Digest(), lb.Size()}, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts a server on root and returns its host and a stop function
// (SIGTERM to its PID, then wait).
func start(bin string, args []string, root, kind string) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	var cmd *exec.Cmd
	if kind == "registry" {
		cfg := filepath.Join(os.TempDir(), "bench-serve-registry-"+strconv.Itoa(os.Getpid())+".yml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  maintenance: {uploadpurging: {enabled: false}, readonly: {enabled: true}}
http: {addr: %s}
`, root, addr)), 0o644); err != nil {
			return "", nil, err
		}
		defer os.Remove(cfg) // read at start
		cmd = exec.Command(bin, "serve", cfg)
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	} else {
		cmd = exec.Command(bin, append(args, "--addr", addr, root)...)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	pid := cmd.Process.Pid
	stop := func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			time.Sleep(200 * time.Millisecond) // the registry reads its config before serving
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("%s did not start: %w", bin, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var accept = v1.MediaTypeImageManifest + ", " + v1.MediaTypeImageIndex

// manifestGETs measures GETs of random manifests by tag from clients
// concurrent clients for d, and returns the rate of successful ones.
func manifestGETs(host string, refs []ref, clients int, d time.Duration) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ok atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(c), 7))
			for ctx.Err() == nil {
				r := refs[rng.IntN(len(refs))]
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+host+"/v2/"+r.repo+"/manifests/"+r.tag, nil)
				req.Header.Set("Accept", accept)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					once.Do(func() { firstErr = fmt.Errorf("GET %s:%s: %s", r.repo, r.tag, resp.Status) })
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), firstErr
}

// pullBlob pulls the large blob once, verifying it if asked, and returns
// MiB/s.
func pullBlob(host string, b blobRef, verify bool) (float64, error) {
	start := time.Now()
	resp, err := http.Get("http://" + host + "/v2/" + b.repo + "/blobs/" + b.d.String())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET blob: %s", resp.Status)
	}
	var w io.Writer = io.Discard
	h := sha256.New()
	if verify {
		w = h
	}
	n, err := io.CopyBuffer(w, resp.Body, make([]byte, 1<<20))
	if err != nil {
		return 0, err
	}
	el := time.Since(start)
	if n != b.size || (verify && "sha256:"+hex.EncodeToString(h.Sum(nil)) != b.d.String()) {
		return 0, errors.New("large blob: wrong content")
	}
	return float64(n) / (1 << 20) / el.Seconds(), nil
}

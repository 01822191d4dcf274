package regstoretest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

// GenerateOptions sizes a synthetic tree made by [Generate].
type GenerateOptions struct {
	// Repositories is the number of repositories, named org%03d/app%03d:
	// repository i is org(i/10)/app(i%10).
	Repositories int
	// TagsPerRepo is the number of tags of each repository. Every tagged
	// manifest gets at least one tag, so it must be at least the number of
	// tagged manifests (ManifestsPerRepo less the untagged ones), and 0
	// when every manifest is untagged.
	TagsPerRepo int
	// ManifestsPerRepo is the number of image manifests pushed to each
	// repository.
	ManifestsPerRepo int
	// LayersPerManifest is the number of layers of each image.
	LayersPerManifest int
	// SharedFraction is the probability, per layer, that the layer is drawn
	// from a pool shared by all repositories (like a common base image)
	// instead of being unique. The pool holds
	// max(LayersPerManifest, ManifestsPerRepo*LayersPerManifest) layers; the
	// layers of one manifest are distinct.
	SharedFraction float64
	// UntaggedFraction of each repository's manifests (rounded) are left
	// untagged: they are pushed first, each with one of the repository's
	// tags, and that tag then moves to a later manifest, so they remain in
	// the tag's index (history) as old pushes do.
	UntaggedFraction float64
	// BlobSize is the number of random bytes in each layer: a layer is a
	// gzipped tar holding one file of BlobSize bytes, so the blob is about
	// 2 KiB larger (tar headers and padding; the gzip is stored, not
	// compressed, since random bytes do not compress).
	BlobSize int
	// Seed makes the tree: equal options give byte-identical trees.
	Seed uint64
}

// GenerateStats counts what [Generate] wrote.
type GenerateStats struct {
	Repositories      int
	Manifests         int   // manifests (revisions) written, all repositories
	TaggedManifests   int   // manifests some tag's current link names
	UntaggedManifests int   // manifests no tag names (only tag history)
	Tags              int   // tags, all repositories
	Blobs             int   // distinct blob data files: layers, configs and manifests
	Layers            int   // distinct layer blobs
	SharedLayers      int   // distinct layer blobs from the shared pool
	LayerLinks        int   // _layers links (configs and layers), all repositories
	Bytes             int64 // total size of the distinct blobs
	// Untagged lists each repository's untagged manifests, sorted.
	Untagged map[string][]digest.Digest
}

// Generate fills s with a large synthetic tree of valid images, as a
// registry would store them: every layer and config is linked in its
// repository, every manifest has its revision link, and tags have current
// links and index entries. Links, manifests and tags are written through the
// regstore API ([regstore.Repository.LinkBlob],
// [regstore.Repository.PutManifest], which validates each push); blob data
// is written straight through the backend ([regstore.WriteFS]), its digest
// being known, because that is several times faster for small blobs.
//
// Manifests alternate between OCI and Docker schema2 images (the n-th
// manifest pushed overall is OCI when n is even). Each config is an image
// config whose diff_ids match its layers and which carries a label naming
// its repository and position, so every config and manifest is unique.
// Layers are real gzipped tars of random bytes (see
// [GenerateOptions].BlobSize). The output depends only on o.
//
// Generate writes through s, so into a [regstore.Dir] every file is
// fsynced, which takes long for large trees: generate into a
// [regstore.MemFS] and copy it out with [WriteTree] instead.
func Generate(s *regstore.Store, o GenerateOptions) (GenerateStats, error) {
	if err := o.check(); err != nil {
		return GenerateStats{}, err
	}
	g := &generator{
		s:     s,
		o:     o,
		rng:   rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		sizes: map[digest.Digest]int64{},
		pool:  make([]*genLayer, max(o.LayersPerManifest, o.ManifestsPerRepo*o.LayersPerManifest)),
		stats: GenerateStats{Untagged: map[string][]digest.Digest{}},
	}
	g.zw, _ = gzip.NewWriterLevel(&g.gzBuf, gzip.NoCompression)
	for i := range o.Repositories {
		if err := g.repository(i); err != nil {
			return g.stats, err
		}
	}
	g.stats.Blobs = len(g.sizes)
	for _, n := range g.sizes {
		g.stats.Bytes += n
	}
	return g.stats, nil
}

// untagged is the number of untagged manifests per repository.
func (o GenerateOptions) untagged() int {
	return int(math.Round(float64(o.ManifestsPerRepo) * o.UntaggedFraction))
}

func (o GenerateOptions) check() error {
	switch {
	case o.Repositories < 0 || o.TagsPerRepo < 0 || o.ManifestsPerRepo < 0 || o.LayersPerManifest < 0 || o.BlobSize < 0:
		return errors.New("regstoretest.Generate: counts and sizes must not be negative")
	case o.Repositories > 10000:
		return errors.New("regstoretest.Generate: at most 10000 repositories (org%03d/app%03d)")
	case !(o.SharedFraction >= 0 && o.SharedFraction <= 1) || !(o.UntaggedFraction >= 0 && o.UntaggedFraction <= 1):
		return errors.New("regstoretest.Generate: fractions must be in [0, 1]")
	}
	tagged := o.ManifestsPerRepo - o.untagged()
	if tagged > 0 && o.TagsPerRepo < tagged {
		return fmt.Errorf("regstoretest.Generate: %d tags per repository cannot tag %d tagged manifests", o.TagsPerRepo, tagged)
	}
	if tagged == 0 && o.TagsPerRepo > 0 {
		return errors.New("regstoretest.Generate: tags need tagged manifests (UntaggedFraction < 1)")
	}
	return nil
}

// RepositoryName is the name [Generate] gives repository i.
func RepositoryName(i int) string { return fmt.Sprintf("org%03d/app%03d", i/10, i%10) }

// TagName is the name [Generate] gives tag j of a repository: "latest" for
// 0, then "v1.<j>".
func TagName(j int) string {
	if j == 0 {
		return "latest"
	}
	return fmt.Sprintf("v1.%d", j)
}

type generator struct {
	s      *regstore.Store
	o      GenerateOptions
	rng    *rand.Rand
	sizes  map[digest.Digest]int64 // distinct blobs written
	pool   []*genLayer             // shared layers, made on first use
	layers int                     // layers made so far (names their file)
	n      int                     // manifests pushed so far
	stats  GenerateStats

	tarBuf, gzBuf bytes.Buffer
	zw            *gzip.Writer
	payload       []byte
}

type genLayer struct {
	blob   []byte
	desc   v1.Descriptor // digest and size; media type set per manifest
	diffID digest.Digest
}

// newLayer makes a gzipped tar holding one file of BlobSize random bytes.
func (g *generator) newLayer() (*genLayer, error) {
	g.layers++
	n := (g.o.BlobSize + 7) / 8 * 8
	if cap(g.payload) < n {
		g.payload = make([]byte, n)
	}
	p := g.payload[:n]
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], g.rng.Uint64())
	}
	p = p[:g.o.BlobSize]
	g.tarBuf.Reset()
	tw := tar.NewWriter(&g.tarBuf)
	hdr := &tar.Header{Name: fmt.Sprintf("layer-%d", g.layers), Mode: 0o644, Size: int64(len(p)),
		Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(p); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	g.gzBuf.Reset()
	g.zw.Reset(&g.gzBuf)
	if _, err := g.zw.Write(g.tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := g.zw.Close(); err != nil {
		return nil, err
	}
	blob := bytes.Clone(g.gzBuf.Bytes())
	return &genLayer{
		blob:   blob,
		desc:   v1.Descriptor{Digest: sha256Digest(blob), Size: int64(len(blob))},
		diffID: sha256Digest(g.tarBuf.Bytes()),
	}, nil
}

func sha256Digest(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromBytes(digest.SHA256, sum[:])
}

// writeData publishes blob data d straight through the backend, unless it
// is there already. It stands in for Store.PutBlob, whose 1 MiB copy buffer
// per call dominates the time of small blobs; the content's digest is known
// to be right.
func (g *generator) writeData(blob []byte, d digest.Digest) error {
	if _, ok := g.sizes[d]; ok {
		return nil
	}
	g.sizes[d] = int64(len(blob))
	w, ok := g.s.FS().(regstore.WriteFS)
	if !ok {
		return fmt.Errorf("backend %T is read-only", g.s.FS())
	}
	p := g.s.Layout().BlobData(d)
	if _, err := fs.Stat(w, p); err == nil {
		return nil
	}
	fw, err := w.Create(p)
	if err != nil {
		return err
	}
	if _, err := fw.Write(blob); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	return fw.Commit()
}

// put stores blob content and links it in r, as a completed upload does.
func (g *generator) put(r *regstore.Repository, blob []byte, d digest.Digest) error {
	if err := g.writeData(blob, d); err != nil {
		return err
	}
	if _, err := r.LinkBlob(d); err != nil {
		return err
	}
	g.stats.LayerLinks++
	return nil
}

func (g *generator) repository(i int) error {
	name := RepositoryName(i)
	r, err := g.s.Repository(name)
	if err != nil {
		return err
	}
	g.stats.Repositories++
	o := g.o
	untagged := o.untagged()
	tagged := o.ManifestsPerRepo - untagged
	linked := map[digest.Digest]bool{}
	for k := range o.ManifestsPerRepo {
		// Untagged manifests go first, each pushed with a tag that a later,
		// tagged manifest then takes over.
		var tags []string
		if k < untagged {
			if o.TagsPerRepo > 0 {
				tags = []string{TagName(k % o.TagsPerRepo)}
			}
		} else {
			for j := k - untagged; j < o.TagsPerRepo; j += tagged {
				tags = append(tags, TagName(j))
			}
		}
		m, err := g.image(r, k, linked, tags)
		if err != nil {
			return fmt.Errorf("regstoretest.Generate: %s manifest %d: %w", name, k, err)
		}
		g.stats.Manifests++
		if k < untagged {
			g.stats.UntaggedManifests++
			g.stats.Untagged[name] = append(g.stats.Untagged[name], m)
		} else {
			g.stats.TaggedManifests++
		}
	}
	g.stats.Tags += o.TagsPerRepo
	slices.Sort(g.stats.Untagged[name])
	return nil
}

// image pushes manifest k of repository r and returns its digest.
func (g *generator) image(r *regstore.Repository, k int, linked map[digest.Digest]bool, tags []string) (digest.Digest, error) {
	o := g.o
	mt := regstore.MediaTypeOCIManifest
	layerMT, configMT := v1.MediaTypeImageLayerGzip, v1.MediaTypeImageConfig
	if g.n%2 == 1 {
		mt = regstore.MediaTypeDockerManifest
		layerMT, configMT = MediaTypeDockerLayer, MediaTypeDockerConfig
	}
	g.n++
	cfg := v1.Image{
		Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		Config:   v1.ImageConfig{Labels: map[string]string{"org.regstore.generated": fmt.Sprintf("%s#%d", r.Name(), k)}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	layers := []v1.Descriptor{}
	used := map[int]bool{}
	for range o.LayersPerManifest {
		var l *genLayer
		if o.SharedFraction > 0 && g.rng.Float64() < o.SharedFraction {
			idx := g.rng.IntN(len(g.pool))
			for used[idx] {
				idx = g.rng.IntN(len(g.pool))
			}
			used[idx] = true
			if g.pool[idx] == nil {
				var err error
				if g.pool[idx], err = g.newLayer(); err != nil {
					return "", err
				}
				g.stats.Layers++
				g.stats.SharedLayers++
			}
			l = g.pool[idx]
		} else {
			var err error
			if l, err = g.newLayer(); err != nil {
				return "", err
			}
			g.stats.Layers++
		}
		if !linked[l.desc.Digest] {
			if err := g.put(r, l.blob, l.desc.Digest); err != nil {
				return "", err
			}
			linked[l.desc.Digest] = true
		}
		d := l.desc
		d.MediaType = layerMT
		layers = append(layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	cd := sha256Digest(config)
	if err := g.put(r, config, cd); err != nil {
		return "", err
	}
	man := struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Config        v1.Descriptor   `json:"config"`
		Layers        []v1.Descriptor `json:"layers"`
	}{2, mt, v1.Descriptor{MediaType: configMT, Digest: cd, Size: int64(len(config))}, layers}
	raw, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	md := sha256Digest(raw)
	if err := g.writeData(raw, md); err != nil {
		return "", err
	}
	m, err := r.PutManifest(mt, raw, tags...)
	if err != nil {
		return "", err
	}
	return m.Digest(), nil
}

// WriteTree copies every file and directory of src, empty directories
// included, into the operating-system directory dir (created if needed),
// keeping file modification times. Files are written with plain
// [os.WriteFile] (mode 0644, directories 0755), several at a time: no
// temporary file, no fsync, no atomic publication. It is meant for fixtures
// and benchmarks only, typically to copy out a tree made with [Generate] in a
// [regstore.MemFS]; never use it on a tree a registry is serving.
func WriteTree(src fs.FS, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type job struct {
		src, dst string
		mtime    time.Time
	}
	jobs := make(chan job, 256)
	errs := make(chan error, writeTreeWorkers)
	var wg sync.WaitGroup
	for range writeTreeWorkers {
		wg.Go(func() {
			var err error
			for j := range jobs {
				if err != nil {
					continue // drain
				}
				err = copyFile(src, j.src, j.dst, j.mtime)
			}
			errs <- err
		})
	}
	walkErr := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			// Pre-order: the parent exists already.
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("regstoretest.WriteTree: %s: not a regular file", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		jobs <- job{p, dst, fi.ModTime()}
		return nil
	})
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		walkErr = errors.Join(walkErr, err)
	}
	return walkErr
}

// writeTreeWorkers is how many files WriteTree writes at once; small files
// cost mostly file-system latency.
const writeTreeWorkers = 4

func copyFile(src fs.FS, name, dst string, mtime time.Time) error {
	b, err := fs.ReadFile(src, name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return err
	}
	if mtime.IsZero() {
		return nil
	}
	return os.Chtimes(dst, mtime, mtime)
}

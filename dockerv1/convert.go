package dockerv1

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

// Media types of the Docker schema2 images Convert writes by default.
const (
	MediaTypeDockerLayer             = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerUncompressed = "application/vnd.docker.image.rootfs.diff.tar"
)

// ConvertOptions tune Convert. The zero value converts every tag into
// Docker schema2 images with gzip-compressed layers.
type ConvertOptions struct {
	// DryRun plans only: it reads the v1 tree's metadata (not the layers)
	// and the v2 tree, and reports each tag as would-convert, unchanged or
	// skipped. Nothing is written.
	DryRun bool
	// OCI writes OCI image manifests and configs instead of Docker
	// schema2 ones.
	OCI bool
	// Uncompressed stores layers as plain tars (their digest is then
	// their diff_id) instead of gzip-compressed.
	Uncompressed bool
	// GzipLevel is the compression level, 1 to 9 (0: 1, gzip.BestSpeed).
	GzipLevel int
	// Workers bounds the layers converted at once, and the compression
	// blocks compressed at once (0: GOMAXPROCS).
	Workers int
	// Overwrite moves v2 tags that hold another image (not a conversion
	// of the same v1 image) to the converted one. Without it such tags
	// are skipped with ErrTagConflict.
	Overwrite bool
	// KeepLibrary keeps the "library/" namespace of one-component names
	// (see MapName).
	KeepLibrary bool
	// XZ decodes xz-compressed layers (nil: ExecXZ, the xz program).
	XZ XZDecoder
	// Progress, when set, is called after each layer and each tag, from
	// one goroutine at a time.
	Progress func(Progress)
}

// Progress counts what Convert has done so far.
type Progress struct {
	Layers, LayersTotal int
	// Bytes counts the v1 layer bytes read, of BytesTotal.
	Bytes, BytesTotal int64
	Tags, TagsTotal   int
}

// Status is what happened to one tag.
type Status string

// The statuses of a tag in a Report.
const (
	Converted Status = "converted"     // written now
	Unchanged Status = "unchanged"     // already converted: nothing written
	Planned   Status = "would-convert" // dry run: would be written
	Skipped   Status = "skipped"       // not converted; Reason says why
)

// TagReport is the outcome for one v1 tag.
type TagReport struct {
	// Repository is the v1 name ("namespace/name"); Target the v2 name,
	// empty when the name could not be mapped.
	Repository string `json:"repository"`
	Target     string `json:"target,omitempty"`
	Tag        string `json:"tag"`
	// ImageID is the v1 image id the tag points at.
	ImageID string `json:"v1Id"`
	// Digest is the v2 manifest's digest (converted or unchanged; also
	// for a dry run of an unchanged tag).
	Digest digest.Digest `json:"digest,omitempty"`
	Status Status        `json:"status"`
	Reason string        `json:"reason,omitempty"`
	// Err is the cause of a skip, for errors.Is (fs.ErrNotExist for a
	// missing image or ancestor, ErrUnfinished, ErrChecksumMismatch,
	// ErrInvalidImage, regstore.ErrInvalidName, ErrNoXZ, ...).
	Err error `json:"-"`
}

// NameReport is a v1 repository whose name v2 refuses: rewritten,
// refused, or colliding with another's.
type NameReport struct {
	Repository string `json:"repository"`
	Target     string `json:"target,omitempty"`
	// Action is "rewritten", "refused" or "collision".
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
}

// ImageReport is a v1 image whose layer could not be converted.
type ImageReport struct {
	ID     string `json:"v1Id"`
	Reason string `json:"reason"`
	Err    error  `json:"-"`
}

// Stats counts a conversion.
type Stats struct {
	Converted int `json:"converted"`
	Unchanged int `json:"unchanged"`
	Planned   int `json:"wouldConvert"`
	Skipped   int `json:"skipped"`
	// Layers counts the layers converted now (each v1 image once, however
	// many tags share it), EmptyLayers those of them with no file.
	Layers      int `json:"layers"`
	EmptyLayers int `json:"emptyLayers"`
	// LayerBytes is the v1 layer bytes read, BlobBytes the layer bytes
	// stored.
	LayerBytes int64 `json:"layerBytes"`
	BlobBytes  int64 `json:"blobBytes"`
}

// Report is what Convert did, tag by tag, in the order of the v1 tree
// (repositories, then tags, lexically). It marshals to JSON as is.
type Report struct {
	Tags   []TagReport   `json:"tags"`
	Names  []NameReport  `json:"names"`
	Images []ImageReport `json:"images"`
	Stats  Stats         `json:"stats"`
}

// Convert converts every tag of the v1 tree src into a v2 image in dst.
//
// A tag becomes a manifest in the repository MapName gives, tagged with
// the same tag: its layers are the v1 images of its ancestry, base first,
// each decompressed (gzip, bzip2, xz or none, sniffed) and stored
// gzip-compressed (deterministically, in 1 MiB blocks compressed in
// parallel; the bytes do not depend on Workers) or, with Uncompressed, as
// the plain tar; its config is the tag's image json with the v1-only fields
// dropped, rootfs.diff_ids and a history entry per v1 image (empty_layer
// for an image whose tar holds no entry, which gets no layer). Each layer
// is converted once, however many tags and repositories share it. Where
// dst's backend has Chtimes, the tag's links get the v1 push time.
//
// Convert is idempotent: a tag whose v2 image is already what it would
// write is reported unchanged without reading its layers, and equal input
// gives equal digests. A v2 tag holding another image (not a conversion
// of the same v1 image) is left alone and its v1 tag skipped with
// ErrTagConflict, unless Overwrite. Tags are published after all their blobs and their
// manifest exist, so an interrupted run leaves no half-converted tag and a
// second run completes it.
//
// Bad v1 input is reported per tag (and per image in Report.Images) and
// does not stop the run. The error is for the run as a whole: the v1 tree
// or dst cannot be read or written, or ctx is done; the report so far is
// returned with it.
func Convert(ctx context.Context, dst *regstore.Store, src *Storage, opts ConvertOptions) (*Report, error) {
	c := &converter{ctx: ctx, dst: dst, src: src, opts: opts, layers: map[string]layerResult{}}
	if c.opts.GzipLevel == 0 {
		c.opts.GzipLevel = gzip.BestSpeed
	}
	if c.opts.GzipLevel < gzip.BestSpeed || c.opts.GzipLevel > gzip.BestCompression {
		return nil, fmt.Errorf("dockerv1: gzip level %d: %w", c.opts.GzipLevel, fs.ErrInvalid)
	}
	if c.opts.Workers <= 0 {
		c.opts.Workers = runtime.GOMAXPROCS(0)
	}
	c.sem = make(chan struct{}, c.opts.Workers)
	c.report = &Report{Tags: []TagReport{}, Names: []NameReport{}, Images: []ImageReport{}}
	if err := c.plan(); err != nil {
		return c.report, err
	}
	if err := c.run(); err != nil {
		return c.report, err
	}
	return c.report, nil
}

type converter struct {
	ctx    context.Context
	dst    *regstore.Store
	src    *Storage
	opts   ConvertOptions
	report *Report
	tags   []*planTag

	sem      chan struct{} // blocks being compressed, at most Workers
	mu       sync.Mutex
	layers   map[string]layerResult // by v1 id
	failed   map[string]error       // by v1 id
	progress Progress
}

type planTag struct {
	rep   int // index in report.Tags
	tag   *Tag
	chain []*Image
}

type layerResult struct {
	diffID digest.Digest
	desc   v1.Descriptor // zero for an empty layer
	empty  bool
}

func (c *converter) skip(i int, err error) {
	t := &c.report.Tags[i]
	t.Status, t.Reason, t.Err = Skipped, err.Error(), err
}

// plan reads the v1 tree: names, tags and their chains.
func (c *converter) plan() error {
	type repoEntry struct {
		repo      *Repository
		target    string
		rewritten bool
		err       error
	}
	var repos []*repoEntry
	byTarget := map[string][]*repoEntry{}
	for r, err := range c.src.Repositories() {
		if err != nil {
			return err
		}
		e := &repoEntry{repo: r}
		e.target, e.rewritten, e.err = MapName(r.FullName(), c.opts.KeepLibrary)
		repos = append(repos, e)
		switch {
		case e.err != nil:
			c.report.Names = append(c.report.Names, NameReport{Repository: r.FullName(), Action: "refused", Reason: e.err.Error()})
		default:
			byTarget[e.target] = append(byTarget[e.target], e)
		}
	}
	// Collisions: a name that maps to itself keeps it; rewritten names
	// that collide with it or with each other are skipped.
	for target, es := range byTarget {
		if len(es) < 2 {
			continue
		}
		var keep *repoEntry
		for _, e := range es {
			if !e.rewritten {
				keep = e
			}
		}
		for _, e := range es {
			if e == keep {
				continue
			}
			var others []string
			for _, o := range es {
				if o != e {
					others = append(others, o.repo.FullName())
				}
			}
			e.err = fmt.Errorf("v1 repository %q: v2 name %q is also the name of %q: %w", e.repo.FullName(), target, others, regstore.ErrInvalidName)
			c.report.Names = append(c.report.Names, NameReport{Repository: e.repo.FullName(), Target: target, Action: "collision", Reason: e.err.Error()})
		}
	}
	for _, e := range repos {
		if e.err == nil && e.rewritten {
			c.report.Names = append(c.report.Names, NameReport{Repository: e.repo.FullName(), Target: e.target, Action: "rewritten"})
		}
	}
	slices.SortStableFunc(c.report.Names, func(a, b NameReport) int {
		if a.Repository < b.Repository {
			return -1
		}
		if a.Repository > b.Repository {
			return 1
		}
		return 0
	})

	chains := map[string][]*Image{}
	chainErrs := map[string]error{}
	images := map[string]*Image{}
	for _, e := range repos {
		for t, err := range e.repo.Tags() {
			if err != nil {
				return err
			}
			i := len(c.report.Tags)
			c.report.Tags = append(c.report.Tags, TagReport{Repository: e.repo.FullName(), Target: e.target, Tag: t.Name, ImageID: t.ImageID})
			if e.err != nil {
				c.report.Tags[i].Target = ""
				c.skip(i, e.err)
				continue
			}
			if err := regstore.ValidateTag(t.Name); err != nil {
				c.skip(i, fmt.Errorf("tag %q: %w", t.Name, err))
				continue
			}
			chain, ok := chains[t.ImageID]
			cerr := chainErrs[t.ImageID]
			if !ok && cerr == nil {
				chain, cerr = c.src.chain(t.ImageID, images)
				if cerr != nil {
					if errors.Is(cerr, fs.ErrNotExist) && !errors.Is(cerr, ErrMissingAncestor) {
						cerr = fmt.Errorf("tag points at a missing image: %w", cerr)
					} else if !errors.Is(cerr, ErrInvalidImage) && !errors.Is(cerr, ErrUnfinished) && !errors.Is(cerr, ErrMissingAncestor) {
						return cerr // an I/O error, not bad input
					}
					chainErrs[t.ImageID] = cerr
				} else {
					chains[t.ImageID] = chain
				}
			}
			if cerr != nil {
				c.skip(i, cerr)
				continue
			}
			c.tags = append(c.tags, &planTag{rep: i, tag: t, chain: chain})
		}
	}
	return nil
}

func (c *converter) run() error {
	c.failed = map[string]error{}
	c.progress.TagsTotal = len(c.tags)
	// Tags already converted need no layer work.
	var todo []*planTag
	for _, pt := range c.tags {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		d, state, err := c.existing(pt)
		if err != nil {
			return err
		}
		rep := &c.report.Tags[pt.rep]
		if state == tagForeign && !c.opts.Overwrite {
			c.skip(pt.rep, fmt.Errorf("%s:%s: %w (%s)", rep.Target, rep.Tag, ErrTagConflict, d))
			c.tick(func(p *Progress) { p.Tags++ })
			continue
		}
		if state == tagUnchanged {
			rep.Status, rep.Digest = Unchanged, d
			c.report.Stats.Unchanged++
			if !c.opts.DryRun {
				if err := c.setTimes(pt, d); err != nil {
					return err
				}
			}
			c.tick(func(p *Progress) { p.Tags++ })
			continue
		}
		if c.opts.DryRun {
			rep.Status = Planned
			c.report.Stats.Planned++
			continue
		}
		todo = append(todo, pt)
	}
	if c.opts.DryRun {
		c.countSkipped()
		return nil
	}
	if err := c.convertLayers(todo); err != nil {
		return err
	}
	for _, pt := range todo {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.publish(pt); err != nil {
			return err
		}
		c.tick(func(p *Progress) { p.Tags++ })
	}
	c.countSkipped()
	return nil
}

func (c *converter) countSkipped() {
	for _, t := range c.report.Tags {
		if t.Status == Skipped {
			c.report.Stats.Skipped++
		}
	}
}

func (c *converter) tick(f func(*Progress)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.progress)
	if c.opts.Progress != nil {
		c.opts.Progress(c.progress)
	}
}

// convertLayers converts, on Workers goroutines, the layers of todo's
// chains that are not converted yet, each once.
func (c *converter) convertLayers(todo []*planTag) error {
	var imgs []*Image
	seen := map[string]bool{}
	for _, pt := range todo {
		for _, img := range pt.chain {
			if _, done := c.layers[img.ID]; done || seen[img.ID] {
				continue
			}
			seen[img.ID] = true
			imgs = append(imgs, img)
			c.progress.LayersTotal++
			c.progress.BytesTotal += max(img.LayerSize, 0)
		}
	}
	// On a new tree, layers go one at a time until a blob is stored: a
	// blob write that is cancelled (a bad or empty layer) removes the
	// directories it created, which could pull them from under a
	// concurrent write.
	rest := imgs
	if _, err := fs.Stat(c.dst.FS(), c.dst.Layout().Blobs()); err != nil {
		for len(rest) > 0 && c.report.Stats.Layers == c.report.Stats.EmptyLayers {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			if err := c.layerJob(rest[0]); err != nil {
				return err
			}
			rest = rest[1:]
		}
	}
	jobs := make(chan *Image)
	var wg sync.WaitGroup
	var fatal error
	for range min(c.opts.Workers, max(len(rest), 1)) {
		wg.Go(func() {
			for img := range jobs {
				if err := c.layerJob(img); err != nil {
					c.mu.Lock()
					if fatal == nil {
						fatal = err
					}
					c.mu.Unlock()
				}
			}
		})
	}
	for _, img := range rest {
		if c.ctx.Err() != nil {
			break
		}
		c.mu.Lock()
		stop := fatal != nil
		c.mu.Unlock()
		if stop {
			break
		}
		jobs <- img
	}
	close(jobs)
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	for _, img := range imgs {
		if err, bad := c.failed[img.ID]; bad {
			c.report.Images = append(c.report.Images, ImageReport{ID: img.ID, Reason: err.Error(), Err: err})
		}
	}
	return nil
}

// layerJob converts one layer and records the outcome; the error is
// fatal (not the v1 input's fault).
func (c *converter) layerJob(img *Image) error {
	res, err := c.convertLayer(img)
	c.mu.Lock()
	switch {
	case err == nil:
		c.layers[img.ID] = res
		c.report.Stats.Layers++
		if res.empty {
			c.report.Stats.EmptyLayers++
		} else {
			c.report.Stats.BlobBytes += res.desc.Size
		}
	case isInputError(err):
		c.failed[img.ID] = err
		err = nil
	default:
		err = fmt.Errorf("image %s: %w", img.ID, err)
	}
	c.mu.Unlock()
	c.tick(func(p *Progress) { p.Layers++ })
	return err
}

// inputError marks an error due to the v1 data (not to I/O on dst).
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func isInputError(err error) bool {
	var ie inputError
	return errors.As(err, &ie)
}

var errEmptyLayer = errors.New("empty layer")

// ErrTagConflict: the v2 tag exists and holds another image than the
// conversion of the v1 tag's image (one pushed to v2 since, say). It
// wraps fs.ErrExist.
var ErrTagConflict = fmt.Errorf("the v2 tag holds another image: %w", fs.ErrExist)

// countingReader adds what it reads to the progress.
type countingReader struct {
	r io.Reader
	c *converter
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		cr.c.mu.Lock()
		cr.c.progress.Bytes += int64(n)
		cr.c.report.Stats.LayerBytes += int64(n)
		cr.c.mu.Unlock()
	}
	return n, err
}

// convertLayer reads the layer of img once: it verifies the checksum,
// computes the diff_id and stores the blob, all in one pass.
func (c *converter) convertLayer(img *Image) (layerResult, error) {
	f, err := c.src.OpenLayer(img.ID)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return layerResult{}, inputError{fmt.Errorf("image %s: layer: %w", img.ID, err)}
		}
		return layerResult{}, err
	}
	defer f.Close()
	sum := newChecksummer(img)
	diff := sha256.New()
	blob := &lazyBlob{c: c}
	// The blob is written in large pieces (the compressor's are small).
	bw := bufio.NewWriterSize(blob, 1<<20)
	var out io.Writer
	var gz *blockGzip
	if c.opts.Uncompressed {
		out = io.MultiWriter(diff, bw)
	} else {
		gz = newBlockGzip(bw, c.opts.GzipLevel, c.sem)
		out = io.MultiWriter(diff, gz)
	}
	_, entries, err := scanLayer(countingReader{f, c}, sum, out, c.opts.XZ, blob.start)
	if err == nil && entries == 0 {
		err = errEmptyLayer
	}
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && gz != nil {
		gz.drain()
	}
	if err != nil {
		p := blob.abort(err) // PutBlob fails and stores nothing
		switch {
		case p.err != nil && errors.Is(err, p.err):
			return layerResult{}, p.err // writing the blob failed
		case errors.Is(err, errEmptyLayer):
			return layerResult{diffID: digest.NewDigest(digest.SHA256, diff), empty: true}, nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && !errors.Is(err, fs.ErrInvalid) {
			return layerResult{}, err // reading the v1 tree failed
		}
		return layerResult{}, inputError{fmt.Errorf("image %s: %w", img.ID, err)}
	}
	p := blob.finish()
	if p.err != nil {
		return layerResult{}, p.err
	}
	mt := c.layerMediaType()
	return layerResult{diffID: digest.NewDigest(digest.SHA256, diff),
		desc: v1.Descriptor{MediaType: mt, Digest: p.b.Digest(), Size: p.b.Size()}}, nil
}

// lazyBlob feeds Store.PutBlob through a pipe. It holds what is written
// until start, called at the layer's first tar entry, so that an empty
// layer never begins a blob write at all.
type lazyBlob struct {
	c    *converter
	buf  bytes.Buffer
	pw   *io.PipeWriter
	done chan putResult
}

type putResult struct {
	b   *regstore.Blob
	err error
}

func (l *lazyBlob) Write(p []byte) (int, error) {
	if l.pw == nil {
		return l.buf.Write(p)
	}
	return l.pw.Write(p)
}

func (l *lazyBlob) start() error {
	if l.pw != nil {
		return nil
	}
	pr, pw := io.Pipe()
	l.pw, l.done = pw, make(chan putResult, 1)
	go func() {
		b, err := l.c.dst.PutBlob(pr, "", -1)
		if err != nil {
			pr.CloseWithError(err) // unblocks the writer when PutBlob stopped early
		}
		l.done <- putResult{b, err}
	}()
	_, err := pw.Write(l.buf.Bytes())
	l.buf = bytes.Buffer{}
	return err
}

// abort ends the write with err: nothing is stored.
func (l *lazyBlob) abort(err error) putResult {
	if l.pw == nil {
		return putResult{}
	}
	l.pw.CloseWithError(err)
	return <-l.done
}

// finish ends the write: the blob is stored.
func (l *lazyBlob) finish() putResult {
	if err := l.start(); err != nil {
		return l.abort(err)
	}
	l.pw.Close()
	return <-l.done
}

func (c *converter) layerMediaType() string {
	switch {
	case c.opts.OCI && c.opts.Uncompressed:
		return v1.MediaTypeImageLayer
	case c.opts.OCI:
		return v1.MediaTypeImageLayerGzip
	case c.opts.Uncompressed:
		return MediaTypeDockerLayerUncompressed
	}
	return MediaTypeDockerLayer
}

func (c *converter) manifestMediaTypes() (manifest, config string) {
	if c.opts.OCI {
		return v1.MediaTypeImageManifest, v1.MediaTypeImageConfig
	}
	return regstore.MediaTypeDockerManifest, regstore.MediaTypeDockerConfig
}

// build returns the config and the manifest of a chain whose layers are
// results (one per image, base first).
func (c *converter) build(chain []*Image, results []layerResult) (config, manifest []byte, err error) {
	config, err = buildConfig(chain, results)
	if err != nil {
		return nil, nil, err
	}
	mt, cmt := c.manifestMediaTypes()
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt,
		Config: v1.Descriptor{MediaType: cmt, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []v1.Descriptor{}}
	for _, r := range results {
		if !r.empty {
			m.Layers = append(m.Layers, r.desc)
		}
	}
	manifest, err = json.MarshalIndent(m, "", "   ")
	return config, manifest, err
}

// tagState is what a v1 tag's v2 tag holds already.
type tagState int

const (
	tagAbsent    tagState = iota // no such tag (or a broken one)
	tagStale                     // a conversion of the same v1 image, with other options or blobs missing
	tagUnchanged                 // exactly what Convert would write
	tagForeign                   // another image
)

// existing reports what the tag's v2 tag holds. It is unchanged when the
// manifest and config it points at are byte for byte the ones built from
// the chain's json with the diff_ids, layers and empty layers they
// record, and every layer blob is there; then the layers are remembered
// for the other tags. It is a conversion of the same v1 image (stale)
// when only the manifest differs or a blob is missing, and foreign when
// the config is not the one the chain gives.
func (c *converter) existing(pt *planTag) (digest.Digest, tagState, error) {
	rep := c.report.Tags[pt.rep]
	r, err := c.dst.Repository(rep.Target)
	if err != nil {
		return "", 0, err
	}
	t, err := r.Tag(pt.tag.Name)
	if err != nil {
		return "", 0, err
	}
	m, err := t.Resolve()
	if err != nil {
		return "", tagAbsent, nil
	}
	cd, ok := m.Config()
	if !ok || cd.Size > regstore.MaxManifestSize {
		return m.Digest(), tagForeign, nil
	}
	cb, err := c.readBlob(cd.Digest)
	if err != nil {
		return m.Digest(), tagStale, nil
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			EmptyLayer bool `json:"empty_layer"`
		} `json:"history"`
	}
	if json.Unmarshal(cb, &cfg) != nil || len(cfg.History) != len(pt.chain) {
		return m.Digest(), tagForeign, nil
	}
	layers := m.Layers()
	results := make([]layerResult, len(pt.chain))
	n := 0
	for i, h := range cfg.History {
		if h.EmptyLayer {
			results[i] = layerResult{empty: true}
			continue
		}
		if n >= len(cfg.RootFS.DiffIDs) {
			return m.Digest(), tagForeign, nil
		}
		results[i] = layerResult{diffID: cfg.RootFS.DiffIDs[n]}
		if n < len(layers) {
			results[i].desc = layers[n]
		}
		n++
	}
	if n != len(cfg.RootFS.DiffIDs) {
		return m.Digest(), tagForeign, nil
	}
	wantCfg, wantMan, err := c.build(pt.chain, results)
	switch {
	case err != nil || !bytes.Equal(wantCfg, cb):
		return m.Digest(), tagForeign, nil
	case n != len(layers) || !bytes.Equal(wantMan, m.Bytes()):
		return m.Digest(), tagStale, nil
	}
	for _, l := range layers {
		if _, err := r.Blob(l.Digest); err != nil {
			return m.Digest(), tagStale, nil
		}
	}
	for i, img := range pt.chain {
		if _, done := c.layers[img.ID]; !done {
			c.layers[img.ID] = results[i]
		}
	}
	return m.Digest(), tagUnchanged, nil
}

func (c *converter) readBlob(d digest.Digest) ([]byte, error) {
	b, err := c.dst.Blob(d)
	if err != nil {
		return nil, err
	}
	rc, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, regstore.MaxManifestSize+1))
}

// publish writes a tag's config, links its layers, and puts its manifest
// with the tag (the tag last).
func (c *converter) publish(pt *planTag) error {
	rep := &c.report.Tags[pt.rep]
	results := make([]layerResult, len(pt.chain))
	for i, img := range pt.chain {
		if err, bad := c.failed[img.ID]; bad {
			c.skip(pt.rep, err)
			return nil
		}
		results[i] = c.layers[img.ID]
	}
	cfg, man, err := c.build(pt.chain, results)
	if err != nil {
		c.skip(pt.rep, inputError{fmt.Errorf("image %s: %w", pt.tag.ImageID, err)})
		return nil
	}
	r, err := c.dst.Repository(rep.Target)
	if err != nil {
		return err
	}
	if _, err := r.PutBlob(bytes.NewReader(cfg), digest.FromBytes(cfg), int64(len(cfg))); err != nil {
		return fmt.Errorf("%s:%s: config: %w", rep.Target, rep.Tag, err)
	}
	for _, res := range results {
		if !res.empty {
			if _, err := r.LinkBlob(res.desc.Digest); err != nil {
				return fmt.Errorf("%s:%s: %w", rep.Target, rep.Tag, err)
			}
		}
	}
	mt, _ := c.manifestMediaTypes()
	m, err := r.PutManifest(mt, man, pt.tag.Name)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", rep.Target, rep.Tag, err)
	}
	rep.Status, rep.Digest = Converted, m.Digest()
	c.report.Stats.Converted++
	return c.setTimes(pt, m.Digest())
}

// setTimes gives the tag's current link and index entry the v1 push time,
// where the backend can set it.
func (c *converter) setTimes(pt *planTag, d digest.Digest) error {
	ct, ok := c.dst.FS().(regstore.ChtimesFS)
	when := pt.tag.Time()
	if !ok || when.IsZero() {
		return nil
	}
	rep := c.report.Tags[pt.rep]
	l := c.dst.Layout()
	for _, p := range []string{l.TagIndexLink(rep.Target, rep.Tag, d), l.TagCurrent(rep.Target, rep.Tag)} {
		if err := ct.Chtimes(p, when); err != nil {
			return fmt.Errorf("%s:%s: %w", rep.Target, rep.Tag, err)
		}
	}
	return nil
}

// history is one entry of an image config's history, as docker wrote it.
type history struct {
	Created    time.Time `json:"created"`
	Author     string    `json:"author,omitempty"`
	CreatedBy  string    `json:"created_by,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
}

// v1Only are the fields of a v1 image json that a v2 config drops.
var v1Only = []string{"id", "parent", "Size", "parent_id", "layer_id", "throwaway", "checksum"}

// buildConfig returns the image config of the chain (base first) whose
// layers are results: the top image's json with the v1-only fields
// dropped, "os" and "architecture" defaulted to linux and amd64 when
// missing, "rootfs" with the diff_ids of the non-empty layers, and
// "history" with one entry per image (its created, author, comment, and
// container_config.Cmd joined by spaces as created_by; empty_layer for an
// empty layer). The keys are sorted, so equal input gives equal bytes.
func buildConfig(chain []*Image, results []layerResult) ([]byte, error) {
	if len(chain) == 0 || len(chain) != len(results) {
		return nil, fmt.Errorf("%w: empty chain", ErrInvalidImage)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(chain[len(chain)-1].JSON, &top); err != nil {
		return nil, fmt.Errorf("json: %w: %v", ErrInvalidImage, err)
	}
	for _, k := range v1Only {
		delete(top, k)
	}
	for k, def := range map[string]string{"os": `"linux"`, "architecture": `"amd64"`} {
		if v, ok := top[k]; !ok || string(v) == `""` || string(v) == "null" {
			top[k] = json.RawMessage(def)
		}
	}
	rootfs := struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	}{Type: "layers", DiffIDs: []digest.Digest{}}
	hist := make([]history, 0, len(chain))
	for i, img := range chain {
		var v struct {
			Created         time.Time `json:"created"`
			Author          string    `json:"author"`
			Comment         string    `json:"comment"`
			ContainerConfig struct {
				Cmd json.RawMessage `json:"Cmd"`
			} `json:"container_config"`
		}
		if err := json.Unmarshal(img.JSON, &v); err != nil {
			return nil, fmt.Errorf("image %s: json: %w: %v", img.ID, ErrInvalidImage, err)
		}
		h := history{Created: v.Created, Author: v.Author, Comment: v.Comment, EmptyLayer: results[i].empty, CreatedBy: joinCmd(v.ContainerConfig.Cmd)}
		hist = append(hist, h)
		if !results[i].empty {
			rootfs.DiffIDs = append(rootfs.DiffIDs, results[i].diffID)
		}
	}
	var err error
	if top["rootfs"], err = json.Marshal(rootfs); err != nil {
		return nil, err
	}
	if top["history"], err = json.Marshal(hist); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// joinCmd is a container_config.Cmd as one string: the list joined by
// spaces (a lone string as is; null as "").
func joinCmd(raw json.RawMessage) string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		out := ""
		for i, s := range list {
			if i > 0 {
				out += " "
			}
			out += s
		}
		return out
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

package migrate

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/hashio"
)

// Limits of an archive import. The archive is spooled to a temporary
// directory outside the store; what stays in memory is an index of its
// entries, bounded by these.
const (
	// maxArchiveEntries bounds the entries (files and links) of an archive.
	maxArchiveEntries = 100_000
	// maxArchiveNameBytes bounds the total length of their names.
	maxArchiveNameBytes = 16 << 20
)

// maxImageConfigSize bounds the image configs read from an archive.
const maxImageConfigSize = 32 << 20

// ImportDockerArchive imports the images of a `docker save` archive (a tar
// stream, optionally gzip-compressed) into the repository, with tags from
// their names (see [ImportOptions].Tags; here the ref names are the
// images' RepoTags, such as "alpine:3.20").
//
// Both forms docker writes are read:
//
//   - The legacy form: manifest.json, a list of {Config, RepoTags,
//     Layers} naming files of the archive (the image config, and one
//     uncompressed layer tar per layer, possibly symbolic links to
//     another's). Each image becomes a Docker schema2 manifest
//     (application/vnd.docker.distribution.manifest.v2+json, laid out as
//     docker lays it out) with the config stored verbatim (so the image ID,
//     the config's digest, is kept).
//
//     By default the uncompressed layers are gzip-compressed, as docker
//     push does, with media type [regstore.MediaTypeDockerLayer]: what
//     every client and tool (crane validate among them) expects. The
//     compression is deterministic, so the same archive gives the same
//     digests on every machine and every run: Go's compress/gzip at
//     [gzip.DefaultCompression], with a header that has no name, no time
//     and the same OS byte. Layers are compressed in parallel (by
//     [ImportOptions].Workers). With [ImportOptions].UncompressedLayers
//     they are stored as they are instead, with media type
//     [regstore.MediaTypeDockerUncompressedLayer] (each layer's digest is
//     then its diff_id; the registry and most clients accept them, crane
//     validate does not).
//
//     Layers that are gzip-compressed in the archive (as crane save writes
//     them) are stored as they are. In every case each layer's
//     uncompressed digest is checked against the config's
//     rootfs.diff_ids, and an image whose diff_ids do not match is
//     refused with an error wrapping [regstore.ErrDigestMismatch].
//
//   - The form newer docker writes, with an OCI image layout inside
//     (index.json and oci-layout present): it is imported as by
//     [ImportOCILayout], with the entries' names taken from
//     their annotations or, failing those, from manifest.json's RepoTags.
//
// When Tags is nil and the archive holds exactly one image, none of whose
// names is for this repository, the image is imported under the tag of
// its first name ("alpine:3.20" gives tag 3.20), as docker load would keep
// it: a single-image archive imports into any repository.
//
// The archive is read once, as a stream, into a temporary directory (in
// [ImportOptions].SpoolDir, or the system's), never into the store: each
// file is stored there once by content, and only an index of names stays
// in memory (at most 100,000 entries and 16 MiB of names), so memory is
// bounded whatever the archive. Only when the whole archive is read and
// its manifest checked is anything written to the store, and then only
// what the selected images use. An archive that is invalid, or whose
// images are all skipped, leaves the store as it was. Importing nothing
// is an error wrapping [ErrNothingImported] unless
// [ImportOptions].AllowEmpty is set. The temporary directory is removed
// before the import returns.
func ImportDockerArchive(ctx context.Context, r *regstore.Repository, archive io.Reader, opts ImportOptions) (*ImportResult, error) {
	const op = "import docker archive"
	w, err := writer(r.Store(), op)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	afs, err := spoolArchive(ctx, archive, opts.SpoolDir)
	if err != nil {
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	defer afs.close()
	opts.HardLink = false // the spool is temporary: copy from it
	if _, ok := afs.lookup(v1.ImageIndexFile); ok {
		if _, ok := afs.lookup(v1.ImageLayoutFile); ok {
			namesFor, err := afs.repoTagsByConfig()
			if err != nil {
				return nil, wrapErr(op, r.Name(), "", "manifest.json", err)
			}
			return importLayout(ctx, r, op, afs, opts, namesFor, res, nil)
		}
	}
	imgs, err := afs.dockerManifest()
	if err != nil {
		return nil, wrapErr(op, r.Name(), "", "manifest.json", err)
	}
	if opts.Tags == nil && len(imgs) == 1 {
		opts.Tags = loneImageTags(r, imgs[0].RepoTags)
	}
	entries, src, err := afs.legacyImages(ctx, r, imgs, opts)
	if err != nil {
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	return importEntries(ctx, r, op, w, src, entries, opts, res, nil)
}

// loneImageTags is the Tags of the only image of an archive, named names:
// nil (the default rule) when a name gives a tag in r by that rule, and
// otherwise the tag of its first name that has one.
func loneImageTags(r *regstore.Repository, names []string) map[string]string {
	for _, n := range names {
		if _, ok := defaultTag(r.Name(), n); ok {
			return nil
		}
	}
	for _, n := range names {
		ref := n
		if i := strings.IndexByte(ref, '@'); i >= 0 {
			ref = ref[:i]
		}
		if colon := strings.LastIndexByte(ref, ':'); colon > strings.LastIndexByte(ref, '/') {
			if tag := ref[colon+1:]; regstore.ValidateTag(tag) == nil {
				return map[string]string{n: tag}
			}
		}
	}
	return nil
}

// spoolArchive reads the whole tar stream into a new temporary directory
// below dir ("" for the system's): every regular file is stored once by
// its sha256 digest, as blobs/sha256/<hex>, and its name indexed.
func spoolArchive(ctx context.Context, archive io.Reader, dir string) (_ *archiveFS, err error) {
	br := bufio.NewReaderSize(archive, 64<<10)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSource, err)
		}
		defer zr.Close()
		in = zr
	}
	tmp, err := os.MkdirTemp(dir, "regstore-archive-")
	if err != nil {
		return nil, err
	}
	afs := &archiveFS{dir: tmp, files: map[string]*archiveFile{}, links: map[string]string{}, gzipped: map[string]string{}}
	defer func() {
		if err != nil {
			afs.close()
		}
	}()
	if err := os.MkdirAll(filepath.Join(tmp, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if afs.d, err = regstore.OpenDir(tmp); err != nil {
		return nil, err
	}
	entries, nameBytes := 0, 0
	tr := tar.NewReader(in)
	buf := make([]byte, hashio.BufferSize)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading tar: %w", ErrInvalidSource, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, ok := cleanArchiveName(hdr.Name)
		if !ok {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			continue
		}
		entries++
		nameBytes += len(name) + len(hdr.Linkname)
		if entries > maxArchiveEntries || nameBytes > maxArchiveNameBytes {
			return nil, fmt.Errorf("%w: more than %d entries or %d bytes of names", ErrInvalidSource, maxArchiveEntries, maxArchiveNameBytes)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			f, err := afs.spool(tr, hdr.Size, buf)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			afs.files[name] = f
			delete(afs.links, name)
		case tar.TypeSymlink:
			if target, ok := cleanArchiveName(path.Join(path.Dir(name), hdr.Linkname)); ok && !path.IsAbs(hdr.Linkname) {
				afs.links[name] = target
				delete(afs.files, name)
			}
		case tar.TypeLink:
			if target, ok := cleanArchiveName(hdr.Linkname); ok {
				afs.links[name] = target
				delete(afs.files, name)
			}
		}
	}
	return afs, nil
}

// spool stores the size bytes r yields in the spool directory, by digest.
// A file that fits buf is hashed first and written only when the spool does
// not have its content yet, so many equal small files cost one.
func (a *archiveFS) spool(r io.Reader, size int64, buf []byte) (*archiveFile, error) {
	if size <= int64(len(buf)) {
		b := buf[:size]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSource, err)
		}
		d := digest.FromBytes(b)
		if _, err := a.d.Stat(ociBlobPath(d)); err == nil {
			return &archiveFile{digest: d, size: size}, nil
		}
		return a.spoolFunc(func(w io.Writer) (int64, error) {
			n, err := w.Write(b)
			return int64(n), err
		})
	}
	return a.spoolFunc(func(w io.Writer) (int64, error) {
		n, err := io.CopyBuffer(w, io.LimitReader(r, size), buf)
		if err == nil && n != size {
			err = fmt.Errorf("%w: %w: read %d bytes, expected %d", ErrInvalidSource, regstore.ErrSizeMismatch, n, size)
		}
		return n, err
	})
}

// spoolFunc stores what write writes in the spool directory, under its
// sha256 digest (once: equal content is kept once).
func (a *archiveFS) spoolFunc(write func(io.Writer) (int64, error)) (*archiveFile, error) {
	f, err := os.CreateTemp(a.dir, "spool-*.tmp")
	if err != nil {
		return nil, err
	}
	h := digest.Canonical.Digester()
	n, err := write(io.MultiWriter(f, h.Hash()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	d := h.Digest()
	dst := filepath.Join(a.dir, filepath.FromSlash(ociBlobPath(d)))
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &archiveFile{digest: d, size: n}, nil
}

// close removes the spool directory.
func (a *archiveFS) close() {
	if a.d != nil {
		a.d.Close()
	}
	os.RemoveAll(a.dir)
}

// cleanArchiveName turns a tar entry name into an fs.FS path.
func cleanArchiveName(name string) (string, bool) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	return name, name != "." && fs.ValidPath(name)
}

// archiveFS is the content of an archive, as an fs.FS of regular files
// kept in the spool directory by digest.
type archiveFS struct {
	dir     string        // the spool directory
	d       *regstore.Dir // opened on it
	mu      sync.Mutex    // guards files and gzipped while layers are compressed
	files   map[string]*archiveFile
	links   map[string]string // symbolic and hard links: name → target
	gzipped map[string]string // layer → its compressed form, made by the import
}

type archiveFile struct {
	digest digest.Digest // sha256 of the content
	size   int64
	// diffID is set for content this import compressed: the digest of
	// the uncompressed original.
	diffID digest.Digest
}

// lookup resolves links and returns the file at name.
func (a *archiveFS) lookup(name string) (*archiveFile, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range 40 {
		if f, ok := a.files[name]; ok {
			return f, true
		}
		target, ok := a.links[name]
		if !ok {
			return nil, false
		}
		name = target
	}
	return nil, false
}

// digestOf is the sha256 digest of the file at name.
func (a *archiveFS) digestOf(name string) (digest.Digest, int64, error) {
	f, ok := a.lookup(name)
	if !ok {
		return "", 0, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f.digest, f.size, nil
}

// Open opens a file of the archive.
func (a *archiveFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, ok := a.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	inner, err := a.d.Open(ociBlobPath(f.digest))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &archiveStoredFile{File: inner, info: archiveInfo{name: path.Base(name), size: f.size}}, nil
}

// Stat describes a file of the archive.
func (a *archiveFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	f, ok := a.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return archiveInfo{name: path.Base(name), size: f.size}, nil
}

var _ fs.StatFS = (*archiveFS)(nil)

type archiveInfo struct {
	name string
	size int64
}

func (i archiveInfo) Name() string       { return i.name }
func (i archiveInfo) Size() int64        { return i.size }
func (i archiveInfo) Mode() fs.FileMode  { return 0o444 }
func (i archiveInfo) ModTime() time.Time { return time.Time{} }
func (i archiveInfo) IsDir() bool        { return false }
func (i archiveInfo) Sys() any           { return nil }

type archiveStoredFile struct {
	fs.File
	info archiveInfo
}

func (f *archiveStoredFile) Stat() (fs.FileInfo, error) { return f.info, nil }

// dockerImage is one entry of a docker save manifest.json.
type dockerImage struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (a *archiveFS) dockerManifest() ([]dockerImage, error) {
	raw, err := readSmallFile(a, "manifest.json", regstore.MaxManifestSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: the archive has neither manifest.json nor index.json and oci-layout", ErrInvalidSource)
		}
		return nil, err
	}
	var imgs []dockerImage
	if err := json.Unmarshal(raw, &imgs); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %w", ErrInvalidSource, err)
	}
	return imgs, nil
}

// repoTagsByConfig maps, from manifest.json when there is one, each image
// config's digest to the image's RepoTags.
func (a *archiveFS) repoTagsByConfig() (func(*regstore.Manifest) []string, error) {
	if _, ok := a.lookup("manifest.json"); !ok {
		return nil, nil
	}
	imgs, err := a.dockerManifest()
	if err != nil {
		return nil, err
	}
	byConfig := map[digest.Digest][]string{}
	for _, img := range imgs {
		if d, _, err := a.digestOf(img.Config); err == nil {
			byConfig[d] = append(byConfig[d], img.RepoTags...)
		}
	}
	return func(m *regstore.Manifest) []string {
		if c, ok := m.Config(); ok {
			return byConfig[c.Digest]
		}
		return nil
	}, nil
}

// legacyImages builds a Docker schema2 manifest for each image of a legacy
// manifest.json that the import selects, checking each config's diff_ids
// against its layers, after compressing the layers (in parallel) unless
// opts.UncompressedLayers. Images whose names all give no tag become
// entries with names only, which importEntries lists as skipped: nothing
// of theirs is compressed or read.
func (a *archiveFS) legacyImages(ctx context.Context, r *regstore.Repository, imgs []dockerImage, opts ImportOptions) ([]*importEntry, source, error) {
	byDigest := false // Tags chooses by manifest digest: every image must be built
	for k := range opts.Tags {
		if strings.Contains(k, ":") && regstore.ValidateDigest(digest.Digest(k)) == nil {
			byDigest = true
		}
	}
	gzipLayers := !opts.UncompressedLayers
	build := make([]bool, len(imgs))
	var layers []string
	for i, img := range imgs {
		chosen, err := chooseTags(r, &importEntry{names: img.RepoTags}, opts.Tags)
		if err != nil {
			return nil, nil, err
		}
		build[i] = byDigest || len(chosen) > 0 || len(img.RepoTags) == 0
		if build[i] && gzipLayers {
			layers = append(layers, img.Layers...)
		}
	}
	if err := a.compressLayers(ctx, layers, defaultWorkers(opts.Workers, false)); err != nil {
		return nil, nil, err
	}
	src := &archiveSource{a: a, paths: map[digest.Digest]string{}}
	var entries []*importEntry
	for i, img := range imgs {
		if !build[i] {
			entries = append(entries, &importEntry{names: img.RepoTags})
			continue
		}
		m, err := a.legacyImage(img, src, gzipLayers)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest.json image %d (%s): %w", i, img.Config, err)
		}
		entries = append(entries, &importEntry{desc: m.Descriptor(), manifest: m, names: img.RepoTags})
	}
	return entries, src, nil
}

// compressLayers makes the gzip-compressed form of each uncompressed layer
// of names, in the spool, with workers at once.
func (a *archiveFS) compressLayers(ctx context.Context, names []string, workers int) error {
	seen := map[digest.Digest]bool{}
	var todo []*archiveFile
	for _, n := range names {
		if !fs.ValidPath(n) {
			continue // legacyImage reports it
		}
		f, ok := a.lookup(n)
		if !ok || f.diffID != "" || seen[f.digest] {
			continue
		}
		seen[f.digest] = true
		if z, err := a.isGzip(f); err != nil {
			return err
		} else if !z {
			todo = append(todo, f)
		}
	}
	jobs := make(chan *archiveFile)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				if err := a.compress(f); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, f := range todo {
		select {
		case jobs <- f:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err != nil {
		return err
	}
	return <-errs // nil when no worker failed
}

// isGzip reports whether the spooled file f starts with gzip's magic.
func (a *archiveFS) isGzip(f *archiveFile) (bool, error) {
	r, err := a.d.Open(ociBlobPath(f.digest))
	if err != nil {
		return false, err
	}
	defer r.Close()
	var magic [2]byte
	n, _ := io.ReadFull(r, magic[:])
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b, nil
}

// compress spools the gzip compression of f and records it as f's
// compressed form. The compression is deterministic: Go's compress/gzip at
// the default level, with a header that has no name, no time and OS byte
// 255 ("unknown"), so equal content gives equal blobs on every machine.
func (a *archiveFS) compress(f *archiveFile) error {
	in, err := a.d.Open(ociBlobPath(f.digest))
	if err != nil {
		return err
	}
	defer in.Close()
	h := digest.Canonical.Digester()
	z, err := a.spoolFunc(func(w io.Writer) (int64, error) {
		cw := &countWriter{w: w}
		zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
		if err != nil {
			return 0, err
		}
		zw.Header = gzip.Header{OS: 255}
		if _, err := io.CopyBuffer(zw, io.TeeReader(in, h.Hash()), make([]byte, hashio.BufferSize)); err != nil {
			return 0, err
		}
		if err := zw.Close(); err != nil {
			return 0, err
		}
		return cw.n, nil
	})
	if err != nil {
		return err
	}
	if h.Digest() != f.digest {
		return fmt.Errorf("%w: spooled layer %s changed while compressed", regstore.ErrDigestMismatch, f.digest)
	}
	z.diffID = f.digest
	zname := "\x00gzip/" + f.digest.Encoded() // NUL: no tar entry name has one
	a.mu.Lock()
	a.files[zname] = z
	a.gzipped[f.digest.String()] = zname
	a.mu.Unlock()
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (a *archiveFS) legacyImage(img dockerImage, src *archiveSource, gzipLayers bool) (*regstore.Manifest, error) {
	desc := func(p, mediaType string) (dockerDescriptor, error) {
		if !fs.ValidPath(p) {
			return dockerDescriptor{}, fmt.Errorf("%w: path %q", ErrInvalidSource, p)
		}
		d, size, err := a.digestOf(p)
		if err != nil {
			return dockerDescriptor{}, err
		}
		src.paths[d] = p
		return dockerDescriptor{MediaType: mediaType, Digest: d, Size: size}, nil
	}
	config, err := desc(img.Config, regstore.MediaTypeDockerConfig)
	if err != nil {
		return nil, err
	}
	raw, err := readSmallFile(a, img.Config, maxImageConfigSize)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrInvalidSource, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(img.Layers) {
		return nil, fmt.Errorf("%w: config lists %d diff_ids for %d layers", regstore.ErrDigestMismatch, len(cfg.RootFS.DiffIDs), len(img.Layers))
	}
	man := struct {
		SchemaVersion int                `json:"schemaVersion"`
		MediaType     string             `json:"mediaType"`
		Config        dockerDescriptor   `json:"config"`
		Layers        []dockerDescriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: regstore.MediaTypeDockerManifest, Config: dockerDescriptor(config), Layers: []dockerDescriptor{}}
	for i, p := range img.Layers {
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("%w: path %q", ErrInvalidSource, p)
		}
		if gzipLayers {
			z, err := a.gzipLayer(p)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", p, err)
			}
			p = z
		}
		l, err := desc(p, regstore.MediaTypeDockerUncompressedLayer)
		if err != nil {
			return nil, err
		}
		diffID, gzipped, err := a.diffID(p, l.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", p, err)
		}
		if gzipped {
			l.MediaType = regstore.MediaTypeDockerLayer
		}
		if diffID != cfg.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("%w: layer %d (%s) is %s uncompressed, the config's diff_id is %s", regstore.ErrDigestMismatch, i, p, diffID, cfg.RootFS.DiffIDs[i])
		}
		man.Layers = append(man.Layers, l)
	}
	// The layout docker's own schema2 manifests have.
	b, err := json.MarshalIndent(man, "", "   ")
	if err != nil {
		return nil, err
	}
	return regstore.ParseManifest(b)
}

// dockerDescriptor is a descriptor with docker's field order, so that the
// manifests an import writes are byte for byte those docker writes.
type dockerDescriptor struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
}

// diffID is the digest of the uncompressed content of the layer at name,
// whose blob digest is d, and whether it is gzip-compressed.
func (a *archiveFS) diffID(name string, d digest.Digest) (digest.Digest, bool, error) {
	if af, ok := a.lookup(name); ok && af.diffID != "" {
		return af.diffID, true, nil
	}
	f, err := a.Open(name)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", false, err
		}
		defer zr.Close()
		h := digest.Canonical.Digester()
		if _, err := io.CopyBuffer(h.Hash(), zr, make([]byte, hashio.BufferSize)); err != nil {
			return "", false, err
		}
		return h.Digest(), true, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "", false, fmt.Errorf("zstd-compressed layers cannot be checked against their diff_ids: %w", errors.ErrUnsupported)
	}
	return d, false, nil
}

// gzipLayer returns the name of the gzip-compressed form of the layer at
// name: name itself when it is compressed already (in the archive), or the
// compressed copy compressLayers made.
func (a *archiveFS) gzipLayer(name string) (string, error) {
	f, ok := a.lookup(name)
	if !ok {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	a.mu.Lock()
	z, ok := a.gzipped[f.digest.String()]
	a.mu.Unlock()
	if ok {
		return z, nil
	}
	return name, nil // compressed in the archive (or compressLayers was not asked)
}

// archiveSource serves the blobs of legacy images from the archive.
type archiveSource struct {
	a     *archiveFS
	paths map[digest.Digest]string
}

func (s *archiveSource) fsys() fs.FS { return s.a }

func (s *archiveSource) manifest(desc v1.Descriptor) (*regstore.Manifest, error) {
	return nil, fmt.Errorf("manifest %s: %w", desc.Digest, fs.ErrNotExist)
}

func (s *archiveSource) blob(desc v1.Descriptor) (blobRef, error) {
	p, ok := s.paths[desc.Digest]
	if !ok {
		return blobRef{}, fmt.Errorf("blob %s: %w", desc.Digest, fs.ErrNotExist)
	}
	return blobRef{digest: desc.Digest, size: desc.Size, path: p}, nil
}

// ImportSkopeoDir imports the image in a skopeo dir: directory (as
// `skopeo copy … dir:DIR` writes it: manifest.json, version, and blobs
// named by the hex of their sha256 digest, or <alg>-<hex> for other
// algorithms; with --all, the instances of a manifest list as
// <hex>.manifest.json) into the repository, and tags it with tag, unless tag
// is "". Only opts' HardLink, TrustDigests, Workers and Progress apply. It
// returns the imported (top-level) manifest. Everything is verified and
// written in the order of [ImportOCILayout].
func ImportSkopeoDir(ctx context.Context, r *regstore.Repository, src fs.FS, tag string, opts ImportOptions) (*regstore.Manifest, error) {
	const op = "import skopeo dir"
	w, err := writer(r.Store(), op)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		if err := regstore.ValidateTag(tag); err != nil {
			return nil, repoErr(r, op, tag, "", err)
		}
	}
	v, err := readSmallFile(src, "version", 4<<10)
	if err != nil {
		return nil, wrapErr(op, r.Name(), tag, "version", err)
	}
	if !strings.HasPrefix(string(v), "Directory Transport Version: 1.") {
		return nil, repoErr(r, op, tag, "version", fmt.Errorf("%w: unknown dir transport version %q", ErrInvalidSource, quote(v)))
	}
	raw, err := readSmallFile(src, "manifest.json", regstore.MaxManifestSize)
	if err != nil {
		return nil, wrapErr(op, r.Name(), tag, "manifest.json", err)
	}
	m, err := regstore.ParseManifest(raw)
	if err != nil {
		return nil, repoErr(r, op, tag, "manifest.json", err)
	}
	ls := layoutSource{fs: src, path: skopeoBlobPath,
		manifestPath: func(d digest.Digest) string { return skopeoBlobPath(d) + ".manifest.json" }}
	entry := &importEntry{desc: m.Descriptor(), manifest: m}
	opts.Tags = nil // the entry has no ref name: imported untagged
	if tag != "" {
		opts.Tags = map[string]string{m.Digest().String(): tag}
	}
	if _, err := importEntries(ctx, r, op, w, ls, []*importEntry{entry}, opts, &ImportResult{}, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// skopeoBlobPath is where a skopeo dir keeps blob d.
func skopeoBlobPath(d digest.Digest) string {
	if d.Algorithm() == digest.Canonical {
		return d.Encoded()
	}
	return d.Algorithm().String() + "-" + d.Encoded()
}

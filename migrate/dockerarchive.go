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
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/hashio"
)

// archiveMemLimit is the size up to which a file of an archive is kept in
// memory while the archive is read; larger files are stored as blob data
// at once.
const archiveMemLimit = 64 << 10

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
//     uncompressed layer.tar per layer, possibly symbolic links to
//     another's). Each image becomes a Docker schema2 manifest
//     (application/vnd.docker.distribution.manifest.v2+json, laid out as
//     docker lays it out) with the config stored verbatim (so the image ID,
//     the config's digest, is kept).
//
//     By default the layers are stored as they are in the archive: the
//     uncompressed ones with the media type
//     [regstore.MediaTypeDockerUncompressedLayer], which the registry (both
//     versions), docker, containerd, podman, skopeo and crane pull accept.
//     They are not recompressed because then each byte is written once and
//     hashed once, with no CPU spent on compression; each layer's digest
//     is exactly its diff_id, as in the archive; and the manifest is the
//     same on every run and every machine (a gzip stream depends on the
//     compressor and its level). The cost is size: the registry then
//     stores and serves the layers uncompressed. With
//     [ImportOptions].GzipLayers they are gzip-compressed instead, as
//     docker push does, with media type [regstore.MediaTypeDockerLayer]: smaller,
//     slower to import, and what tools that insist on gzip want (crane
//     validate, for one, cannot check uncompressed layers).
//
//     Layers that are gzip-compressed in the archive (as crane save writes
//     them) are stored as they are, with [regstore.MediaTypeDockerLayer]. In every
//     case each layer's uncompressed digest is checked against the
//     config's rootfs.diff_ids, and an image whose diff_ids do not match
//     is refused with an error wrapping [regstore.ErrDigestMismatch].
//
//   - The form newer docker writes, with an OCI image layout inside
//     (index.json and oci-layout present): it is imported as by
//     [ImportOCILayout], with the entries' names taken from
//     their annotations or, failing those, from manifest.json's RepoTags.
//
// The archive is read once, as a stream: files larger than 64 KiB are
// stored as blob data as they are read (hashed in the same pass), before
// the archive's manifest is known; smaller ones are held in memory until
// the end. So the store may be left with blob data no manifest uses (files
// of images that were not selected, or of an archive that turned out to be
// invalid); garbage collection removes it.
func ImportDockerArchive(ctx context.Context, r *regstore.Repository, archive io.Reader, opts ImportOptions) (*ImportResult, error) {
	const op = "import docker archive"
	w, err := writer(r.Store(), op)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	prog := &progress{stats: &res.Stats, fn: opts.Progress}
	afs, err := readArchive(ctx, r, archive, prog, opts.GzipLayers)
	if err != nil {
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	opts.HardLink = false // nothing to link: the data is in the store already or in memory
	fresh := afs.stored()
	if _, ok := afs.lookup(v1.ImageIndexFile); ok {
		if _, ok := afs.lookup(v1.ImageLayoutFile); ok {
			namesFor, err := afs.repoTagsByConfig()
			if err != nil {
				return nil, wrapErr(op, r.Name(), "", "manifest.json", err)
			}
			return importLayout(ctx, r, op, afs, opts, namesFor, res, fresh)
		}
	}
	entries, src, err := afs.legacyImages(opts.GzipLayers)
	if err != nil {
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	return importEntries(ctx, r, op, w, src, entries, opts, res, fresh)
}

// stored is the set of digests the archive's reading stored as blob data.
func (a *archiveFS) stored() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, f := range a.files {
		if !f.inMemory {
			out[f.digest] = true
		}
	}
	return out
}

// readArchive reads the whole tar stream: small files into memory, the
// others into the store as blob data.
func readArchive(ctx context.Context, r *regstore.Repository, archive io.Reader, prog *progress, gzipLayers bool) (*archiveFS, error) {
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
	afs := &archiveFS{s: r.Store(), files: map[string]*archiveFile{}, links: map[string]string{}, gzipped: map[string]string{}}
	tr := tar.NewReader(in)
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
		case tar.TypeReg:
			// A legacy layer is compressed as it is read, when asked to,
			// so that its uncompressed form is never stored.
			compress := gzipLayers && path.Base(name) == "layer.tar"
			f, err := readArchiveFile(r, tr, hdr.Size, compress)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			afs.files[name] = f
			delete(afs.links, name)
			if !f.inMemory {
				prog.update(func(s *CopyStats) { s.Blobs++; s.Bytes += f.size })
			}
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

// readArchiveFile reads one file of the archive: into memory when it is
// small, otherwise into the store, hashed as it is written; with compress,
// gzip-compressed on the way into the store.
func readArchiveFile(r *regstore.Repository, tr io.Reader, size int64, compress bool) (*archiveFile, error) {
	if size <= archiveMemLimit {
		b := make([]byte, size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSource, err)
		}
		return &archiveFile{inMemory: true, data: b, size: size}, nil
	}
	if compress {
		return putGzipped(r.Store(), io.LimitReader(tr, size), size)
	}
	b, err := r.Store().PutBlob(tr, "", size)
	if err != nil {
		return nil, err
	}
	return &archiveFile{digest: b.Digest(), size: size}, nil
}

// putGzipped stores the gzip compression of the size bytes rd yields, and
// returns the stored file with the digest of the uncompressed content as
// its diffID. The compression is docker's (gzip's default level, no name,
// no time), so equal content gives equal blobs.
func putGzipped(s *regstore.Store, rd io.Reader, size int64) (*archiveFile, error) {
	pr, pw := io.Pipe()
	h := digest.Canonical.Digester()
	done := make(chan struct{})
	var n int64
	go func() {
		defer close(done)
		zw := gzip.NewWriter(pw)
		var err error
		n, err = io.CopyBuffer(zw, io.TeeReader(rd, h.Hash()), make([]byte, hashio.BufferSize))
		if err == nil && n != size {
			err = fmt.Errorf("%w: %w: read %d bytes, expected %d", ErrInvalidSource, regstore.ErrSizeMismatch, n, size)
		}
		pw.CloseWithError(errors.Join(err, zw.Close()))
	}()
	b, err := s.PutBlob(pr, "", -1)
	pr.CloseWithError(errors.New("stopped"))
	<-done
	if err != nil {
		return nil, err
	}
	return &archiveFile{digest: b.Digest(), size: b.Size(), diffID: h.Digest()}, nil
}

// cleanArchiveName turns a tar entry name into an fs.FS path.
func cleanArchiveName(name string) (string, bool) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	return name, name != "." && fs.ValidPath(name)
}

// archiveFS is the content of an archive, as an fs.FS of regular files:
// the small ones in memory, the others as blob data of the store.
type archiveFS struct {
	s       *regstore.Store
	files   map[string]*archiveFile
	links   map[string]string // symbolic and hard links: name → target
	gzipped map[string]string // layer → its compressed form, made by the import
}

type archiveFile struct {
	inMemory bool
	data     []byte
	digest   digest.Digest // of stored data; computed lazily for data in memory
	size     int64
	// diffID is set for content this import compressed: the digest of
	// the uncompressed original.
	diffID digest.Digest
}

// lookup resolves links and returns the file at name.
func (a *archiveFS) lookup(name string) (*archiveFile, bool) {
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
	if f.digest == "" {
		f.digest = digest.FromBytes(f.data)
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
	info := archiveInfo{name: path.Base(name), size: f.size}
	if f.inMemory {
		return &archiveMemFile{Reader: bytes.NewReader(f.data), info: info}, nil
	}
	inner, err := a.s.FS().Open(a.s.Layout().BlobData(f.digest))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &archiveStoredFile{File: inner, info: info}, nil
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

type archiveMemFile struct {
	*bytes.Reader
	info archiveInfo
}

func (f *archiveMemFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *archiveMemFile) Close() error               { return nil }

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
// manifest.json, checking each config's diff_ids against its layers.
func (a *archiveFS) legacyImages(gzipLayers bool) ([]*importEntry, source, error) {
	imgs, err := a.dockerManifest()
	if err != nil {
		return nil, nil, err
	}
	src := &archiveSource{a: a, paths: map[digest.Digest]string{}}
	var entries []*importEntry
	for i, img := range imgs {
		m, err := a.legacyImage(img, src, gzipLayers)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest.json image %d (%s): %w", i, img.Config, err)
		}
		entries = append(entries, &importEntry{desc: m.Descriptor(), manifest: m, names: img.RepoTags})
	}
	return entries, src, nil
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
// name: name itself when it is compressed already, or the compressed copy
// this import makes (once per layer), under a name no archive file has.
func (a *archiveFS) gzipLayer(name string) (string, error) {
	if z, ok := a.gzipped[name]; ok {
		return z, nil
	}
	f, ok := a.lookup(name)
	if !ok {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if f.diffID != "" {
		return name, nil // compressed as it was read
	}
	r, err := a.Open(name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return name, nil // compressed in the archive
	}
	var z *archiveFile
	if f.inMemory {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(f.data); err != nil {
			return "", err
		}
		if err := zw.Close(); err != nil {
			return "", err
		}
		z = &archiveFile{inMemory: true, data: buf.Bytes(), size: int64(buf.Len()), diffID: digest.FromBytes(f.data)}
	} else if z, err = putGzipped(a.s, br, f.size); err != nil {
		return "", err
	}
	zname := name + "\x00gzip" // NUL: no tar entry name has one
	a.files[zname] = z
	a.gzipped[name] = zname
	return zname, nil
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

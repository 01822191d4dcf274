package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

// ErrInvalidSource: an import source (OCI image layout, docker save
// archive, skopeo dir) is malformed: a missing or unreadable oci-layout,
// index.json or manifest.json, an unsupported layout version, a tag given
// to two different manifests. It also matches [fs.ErrInvalid].
var ErrInvalidSource = fmt.Errorf("invalid import source: %w", fs.ErrInvalid)

// Annotations of index.json entries that name them.
const (
	// AnnotationRefName is the OCI image layout's name of an entry:
	// usually a tag ("v1", as skopeo and umoci write), sometimes a whole
	// reference ("registry.example/app:v1").
	AnnotationRefName = v1.AnnotationRefName
	// AnnotationContainerdImageName is the full image name containerd and
	// newer docker save write next to AnnotationRefName
	// ("docker.io/library/alpine:3.20").
	AnnotationContainerdImageName = "io.containerd.image.name"
)

// ImportOptions configures [ImportOCILayout],
// [ImportDockerArchive] and [ImportSkopeoDir].
type ImportOptions struct {
	// Tags chooses the tags to set. Its keys are ref names as found in
	// the source (see below), or manifest digests ("sha256:…") for
	// entries that have no ref name, as `crane pull --format oci` writes
	// them; its values are tags. When Tags is nil, each ref name gives
	// a tag by the default rule below.
	//
	// The ref name of an index.json entry is its
	// io.containerd.image.name annotation when present, and otherwise its
	// org.opencontainers.image.ref.name annotation; those of a legacy
	// docker save image are its RepoTags. By the default rule a ref name
	// that is a valid tag ("v1") is that tag, and a full reference
	// ("[host/]path:tag") gives its tag when its path names this
	// repository (docker.io's "library/" prefix is optional on either
	// side); any other ref name gives no tag.
	//
	// An entry (an image, or an index with its children) is imported when
	// it gets a tag, or when it has no ref name at all: untagged entries
	// are imported untagged when Tags is nil, and otherwise only when they
	// are referrers of (have a subject among) what is imported. Entries
	// whose ref names give no tag (images of other repositories in a
	// multi-image archive, names missing from Tags) are skipped and listed
	// in [ImportResult].Skipped.
	Tags map[string]string
	// HardLink publishes blob data as hard links to the source's files
	// instead of copying it, when the source is a [*regstore.Dir] opened on the
	// layout directory and the store's backend a [*regstore.Dir] on the same
	// filesystem (or the source is the store's own backend, implementing
	// [regstore.LinkFS] and [regstore.RenameFS]). Blobs that cannot be linked are copied.
	// A linked file shares its inode, mode and owner with the source file:
	// the registry must be able to read it, and neither copy may be
	// rewritten in place afterwards (skopeo, crane and umoci replace
	// files, they do not rewrite them). Between two Dirs each link is made
	// at a temporary name, .regstore-link-<random>.tmp, at the top of the
	// store's directory, checked to be the very file the source names, and
	// renamed into place; a crash can leave one such name behind.
	HardLink bool
	// TrustDigests, with HardLink, skips reading linked files to verify
	// their digests: only sizes are checked. Without it every linked file
	// is read once (no data is written). Copied data is always verified
	// while it is written.
	TrustDigests bool
	// Workers bounds the blobs (and the manifests of one level, and the
	// tags) written at once. Zero means 4, or 16 with HardLink: linking is
	// bound by metadata operations (and, on a backend without [regstore.BatchFS],
	// by the fsync of each new name, which the filesystem commits in groups
	// when they come concurrently).
	Workers int
	// Progress, if set, is called with the running totals after each blob,
	// manifest and tag, from one goroutine at a time.
	Progress func(CopyStats)
	// GzipLayers is kept for compatibility and does nothing: the
	// uncompressed layers of a legacy docker save archive are
	// gzip-compressed by default (see [ImportDockerArchive]).
	//
	// Deprecated: compression is the default; see UncompressedLayers.
	GzipLayers bool
	// UncompressedLayers stores the uncompressed layers of a legacy docker
	// save archive as they are, instead of gzip-compressing them as docker
	// push does (see [ImportDockerArchive]). Other sources' layers are
	// always stored verbatim.
	UncompressedLayers bool
	// SpoolDir is the directory in which [ImportDockerArchive] makes its
	// temporary directory for the archive's files; "" means
	// [os.TempDir]. It needs room for the archive's unpacked content (and
	// the compressed layers). It must not be inside the store.
	SpoolDir string
	// AllowEmpty makes an import that selects nothing (every entry
	// skipped, or a Tags key the source does not have) succeed, importing
	// nothing; otherwise it fails with an error wrapping
	// [ErrNothingImported], having written nothing.
	AllowEmpty bool
}

// ErrNothingImported: an import selected nothing from its source (all of
// its entries are named for other repositories, or no entry has the ref
// names asked for). It also matches [fs.ErrNotExist].
var ErrNothingImported = fmt.Errorf("nothing to import: %w", fs.ErrNotExist)

// ImportResult is what an import did.
type ImportResult struct {
	// Manifests are the top-level manifests imported (index.json entries
	// or archive images), in source order.
	Manifests []v1.Descriptor
	// Tags are the tags set, in source order.
	Tags []ImportedTag
	// Skipped are the source's ref names that set no tag (names of other
	// repositories, names missing from [ImportOptions].Tags), in source
	// order. An entry all of whose names are skipped is not imported.
	Skipped []string
	// Stats counts what was copied, linked and skipped.
	Stats CopyStats
}

// ImportedTag is one tag an import set.
type ImportedTag struct {
	Tag     string
	Digest  digest.Digest
	RefName string // the source's name for it; "" when chosen by digest
}

// ImportOCILayout imports an OCI image layout (oci-layout with
// imageLayoutVersion 1.0.0, index.json, blobs/<alg>/<hex>), as written by
// `skopeo copy … oci:DIR:TAG`, `crane pull --format oci` or umoci, into the
// repository: every selected entry of index.json (see
// [ImportOptions].Tags) with everything it references: child manifests of
// indexes, recursively; configs; layers; and referrers listed in
// index.json. Bytes are stored verbatim, so every digest stays the same.
//
// The order is the registry's push order: blobs first (each verified
// against its digest while it is written), then manifests, each after its
// children (the registry refuses an index whose children are missing) and
// after its subject when the subject is imported too, then tags. Every
// selected manifest is read and checked before anything is written; blob
// content is checked while it is written, and a blob that does not match
// is never published, nor anything that refers to it. An interrupted or
// failed import leaves at most blobs and their links, which a re-run
// reuses and garbage collection otherwise removes. With HardLink, on a
// backend with [regstore.BatchFS] (a [regstore.Dir]), each of these steps (blob data; blob
// links; each level of manifests; tags) is published at once with one
// durability barrier, instead of an fsync per name, in the same order.
//
// Layers with URLs (foreign layers) that the layout does not hold are
// skipped. Manifests must be sha256 digests. Errors wrap
// [ErrInvalidSource], [fs.ErrNotExist], [regstore.ErrDigestMismatch],
// [regstore.ErrSizeMismatch] or the push validation's [regstore.ErrManifestInvalid].
func ImportOCILayout(ctx context.Context, r *regstore.Repository, src fs.FS, opts ImportOptions) (*ImportResult, error) {
	return importLayout(ctx, r, "import oci layout", src, opts, nil, &ImportResult{}, nil)
}

// importLayout is ImportOCILayout; namesFor, if set, gives ref names to
// entries that have none in index.json. The import is recorded in res; see
// importEntries for fresh.
func importLayout(ctx context.Context, r *regstore.Repository, op string, src fs.FS, opts ImportOptions,
	namesFor func(*regstore.Manifest) []string, res *ImportResult, fresh map[digest.Digest]bool) (*ImportResult, error) {
	w, err := writer(r.Store(), op)
	if err != nil {
		return nil, err
	}
	fail := func(ref, p string, err error) (*ImportResult, error) {
		return nil, wrapErr(op, r.Name(), ref, p, err)
	}
	if err := checkLayoutVersion(src); err != nil {
		return fail("", "oci-layout", err)
	}
	raw, err := readSmallFile(src, "index.json", regstore.MaxManifestSize)
	if err != nil {
		return fail("", "index.json", err)
	}
	var idx v1.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fail("", "index.json", fmt.Errorf("%w: index.json: %w", ErrInvalidSource, err))
	}
	if idx.SchemaVersion != 2 {
		return fail("", "index.json", fmt.Errorf("%w: index.json has schemaVersion %d, want 2", ErrInvalidSource, idx.SchemaVersion))
	}
	ls := layoutSource{fs: src, path: ociBlobPath}
	var entries []*importEntry
	for _, e := range idx.Manifests {
		if err := regstore.ValidateDigest(e.Digest); err != nil {
			return fail(string(e.Digest), "index.json", fmt.Errorf("%w: index.json entry: %w", ErrInvalidSource, err))
		}
		entry := &importEntry{desc: e}
		if n := refNameOf(e); n != "" {
			entry.names = []string{n}
		} else if namesFor != nil {
			m, err := entry.get(ls)
			if err != nil {
				return fail(e.Digest.String(), ociBlobPath(e.Digest), err)
			}
			entry.names = namesFor(m)
		}
		entries = append(entries, entry)
	}
	return importEntries(ctx, r, op, w, ls, entries, opts, res, fresh)
}

// importEntry is one top-level manifest of an import source. Its manifest
// is read only when it is needed: an entry that is skipped need not even
// be readable.
type importEntry struct {
	desc     v1.Descriptor      // Digest validated
	manifest *regstore.Manifest // nil until read
	names    []string           // ref names
}

// get returns the entry's manifest, reading it from src the first time.
func (e *importEntry) get(src source) (*regstore.Manifest, error) {
	if e.manifest == nil {
		m, err := src.manifest(e.desc)
		if err != nil {
			return nil, err
		}
		e.manifest = m
	}
	return e.manifest, nil
}

// importEntries selects entries by opts.Tags, then transfers them,
// recording what it did in res. Blobs in fresh were stored by this import
// already, and counted as copied: finding them is not counted again.
func importEntries(ctx context.Context, r *regstore.Repository, op string, w regstore.WriteFS, src source, entries []*importEntry,
	opts ImportOptions, res *ImportResult, fresh map[digest.Digest]bool) (*ImportResult, error) {
	g := newGraph()
	owner := map[string]importedTagSource{}
	var tags []tagAssignment
	var candidates []*importEntry // untagged entries kept only as referrers
	selected := map[digest.Digest]bool{}
	for _, e := range entries {
		d := e.desc.Digest
		chosen, err := chooseTags(r, e, opts.Tags)
		if err != nil {
			return nil, wrapErr(op, r.Name(), d.String(), "", err)
		}
		for _, n := range e.names {
			if !slices.ContainsFunc(chosen, func(c ImportedTag) bool { return c.RefName == n }) {
				res.Skipped = append(res.Skipped, n)
			}
		}
		switch {
		case len(chosen) > 0:
		case len(e.names) > 0:
			continue
		case opts.Tags != nil:
			candidates = append(candidates, e)
			continue
		}
		for _, c := range chosen {
			if prev, ok := owner[c.Tag]; ok && prev.digest != d {
				return nil, wrapErr(op, r.Name(), c.Tag, "", fmt.Errorf("%w: tag %q is given to %s (%q) and to %s (%q)",
					ErrInvalidSource, c.Tag, prev.digest, prev.refName, d, c.RefName))
			}
			if _, ok := owner[c.Tag]; !ok {
				owner[c.Tag] = importedTagSource{d, c.RefName}
				tags = append(tags, tagAssignment{c.Tag, d})
				res.Tags = append(res.Tags, c)
			}
		}
		if err := selectEntry(r, g, src, e, selected, res); err != nil {
			return nil, wrapErr(op, r.Name(), d.String(), "", err)
		}
	}
	// Untagged referrers of what is imported, until none is left.
	for changed := true; changed; {
		changed = false
		for _, e := range candidates {
			if selected[e.desc.Digest] {
				continue
			}
			m, err := e.get(src)
			if err != nil {
				return nil, wrapErr(op, r.Name(), e.desc.Digest.String(), "", err)
			}
			if s, ok := m.Subject(); ok && g.manifests[s.Digest] != nil {
				if err := selectEntry(r, g, src, e, selected, res); err != nil {
					return nil, wrapErr(op, r.Name(), e.desc.Digest.String(), "", err)
				}
				changed = true
			}
		}
	}
	if len(selected) == 0 && !opts.AllowEmpty {
		var err error = ErrNothingImported
		switch {
		case len(res.Skipped) > 0:
			err = fmt.Errorf("%w: no tag for %q in %s (named for other repositories?)", ErrNothingImported, res.Skipped, r.Name())
		case opts.Tags != nil:
			err = fmt.Errorf("%w: the source has none of the names asked for", ErrNothingImported)
		}
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	opts.Workers = defaultWorkers(opts.Workers, opts.HardLink)
	t := &transfer{op: op, w: w, src: src, target: repoTarget{r, w}, workers: opts.Workers,
		trust: opts.TrustDigests, prog: &progress{stats: &res.Stats, fn: opts.Progress}, fresh: fresh}
	if opts.HardLink {
		t.linker = newHardLinker(src.fsys(), w)
	}
	if err := t.run(ctx, g, tags); err != nil {
		return nil, wrapErr(op, r.Name(), "", "", err)
	}
	return res, nil
}

type importedTagSource struct {
	digest  digest.Digest
	refName string
}

// selectEntry adds an entry to the graph as a root.
func selectEntry(r *regstore.Repository, g *graph, src source, e *importEntry, selected map[digest.Digest]bool, res *ImportResult) error {
	d := e.desc.Digest
	if selected[d] {
		return nil
	}
	selected[d] = true
	if d.Algorithm() != digest.Canonical {
		return fmt.Errorf("manifest %s: %w: manifests are stored and referenced by sha256 only", d, errors.ErrUnsupported)
	}
	m, err := e.get(src)
	if err != nil {
		return err
	}
	if err := g.addManifest(src, m); err != nil {
		return err
	}
	if !slices.Contains(g.roots, d) {
		g.roots = append(g.roots, d)
	}
	desc := e.desc
	desc.Size = m.Size()
	if desc.MediaType == "" {
		desc.MediaType = m.MediaType()
	}
	res.Manifests = append(res.Manifests, desc)
	return nil
}

// chooseTags maps an entry's ref names (or digest) to tags.
func chooseTags(r *regstore.Repository, e *importEntry, mapping map[string]string) ([]ImportedTag, error) {
	var out []ImportedTag
	add := func(tag, refName string) error {
		if err := regstore.ValidateTag(tag); err != nil {
			return fmt.Errorf("tag for %q: %w", refName, err)
		}
		out = append(out, ImportedTag{Tag: tag, Digest: e.desc.Digest, RefName: refName})
		return nil
	}
	if mapping == nil {
		for _, n := range e.names {
			if tag, ok := defaultTag(r.Name(), n); ok {
				if err := add(tag, n); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for _, n := range e.names {
		if tag := mapping[n]; tag != "" {
			if err := add(tag, n); err != nil {
				return nil, err
			}
		}
	}
	if tag := mapping[e.desc.Digest.String()]; tag != "" {
		if err := add(tag, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// defaultTag is the tag a ref name gives in repository repo, by the rule
// of [ImportOptions].Tags.
func defaultTag(repo, name string) (string, bool) {
	if regstore.ValidateTag(name) == nil {
		return name, true
	}
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	colon := strings.LastIndexByte(name, ':')
	if colon <= strings.LastIndexByte(name, '/') {
		return "", false // no tag
	}
	tag, p := name[colon+1:], name[:colon]
	if regstore.ValidateTag(tag) != nil {
		return "", false
	}
	domain := ""
	if i := strings.IndexByte(p, '/'); i >= 0 && (strings.ContainsAny(p[:i], ".:") || p[:i] == "localhost") {
		domain, p = p[:i], p[i+1:]
	}
	if p == repo {
		return tag, true
	}
	if domain == "" || domain == "docker.io" || domain == "index.docker.io" {
		if "library/"+p == repo || p == "library/"+repo {
			return tag, true
		}
	}
	return "", false
}

// refNameOf is an index.json entry's ref name.
func refNameOf(d v1.Descriptor) string {
	if n := d.Annotations[AnnotationContainerdImageName]; n != "" {
		return n
	}
	return d.Annotations[AnnotationRefName]
}

// checkLayoutVersion reads oci-layout.
func checkLayoutVersion(src fs.FS) error {
	raw, err := readSmallFile(src, v1.ImageLayoutFile, 64<<10)
	if err != nil {
		return err
	}
	var l v1.ImageLayout
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("%w: oci-layout: %w", ErrInvalidSource, err)
	}
	if l.Version != v1.ImageLayoutVersion {
		return fmt.Errorf("%w: imageLayoutVersion %q, want %q", ErrInvalidSource, l.Version, v1.ImageLayoutVersion)
	}
	return nil
}

// readSmallFile reads name whole, failing (with ErrInvalidSource) when it
// is longer than limit.
func readSmallFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	if err := checkRegular(fsys, name); err != nil {
		return nil, err
	}
	b, err := regstore.ReadFileMax(fsys, name, int(limit))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidSource, name, limit)
	}
	return b, nil
}

// checkRegular refuses name unless it is a regular file (symbolic links
// followed, as the source's Open follows them), so that nothing opens a
// named pipe or a device of a source, which can block for ever or never
// end. The error wraps [regstore.ErrNotRegular]. A source that is a
// [*regstore.Dir] refuses them again at open, without blocking, should
// the file change in between.
func checkRegular(fsys fs.FS, name string) error {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (mode %s)", regstore.ErrNotRegular, fi.Mode().Type())}
	}
	return nil
}

// openRegular opens name after [checkRegular].
func openRegular(fsys fs.FS, name string) (fs.File, error) {
	if err := checkRegular(fsys, name); err != nil {
		return nil, err
	}
	return fsys.Open(name)
}

// wrapErr gives err the operation's context, unless it is an *Error
// already.
func wrapErr(op, repo, ref, p string, err error) error {
	if _, ok := err.(*regstore.Error); ok {
		return err
	}
	return &regstore.Error{Op: op, Repository: repo, Reference: ref, Path: p, Err: err}
}

// ociBlobPath is where an OCI image layout keeps blob d.
func ociBlobPath(d digest.Digest) string {
	return path.Join(v1.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// layoutSource reads a directory of blobs named after their digests: an
// OCI image layout, or a skopeo dir.
type layoutSource struct {
	fs   fs.FS
	path func(digest.Digest) string // where blob d is
	// manifestPath, if set, is where a manifest is (skopeo dir).
	manifestPath func(digest.Digest) string
}

func (s layoutSource) fsys() fs.FS { return s.fs }

func (s layoutSource) manifest(desc v1.Descriptor) (*regstore.Manifest, error) {
	if err := regstore.ValidateDigest(desc.Digest); err != nil {
		return nil, err
	}
	p := s.path(desc.Digest)
	if s.manifestPath != nil {
		p = s.manifestPath(desc.Digest)
	}
	return readManifestFile(s.fs, p, desc)
}

// readManifestFile reads the manifest desc describes from name and checks
// its size, digest and media type.
func readManifestFile(fsys fs.FS, name string, desc v1.Descriptor) (*regstore.Manifest, error) {
	if err := checkRegular(fsys, name); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	raw, err := regstore.ReadFileMax(fsys, name, regstore.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return checkManifestBytes(raw, desc)
}

// checkManifestBytes checks raw against the descriptor that names it and
// parses it.
func checkManifestBytes(raw []byte, desc v1.Descriptor) (*regstore.Manifest, error) {
	if len(raw) > regstore.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %w: more than %d bytes", desc.Digest, regstore.ErrManifestTooLarge, regstore.MaxManifestSize)
	}
	if desc.Size > 0 && int64(len(raw)) != desc.Size {
		return nil, fmt.Errorf("manifest %s: %w: %d bytes, descriptor says %d", desc.Digest, regstore.ErrSizeMismatch, len(raw), desc.Size)
	}
	if got := desc.Digest.Algorithm().FromBytes(raw); got != desc.Digest {
		return nil, fmt.Errorf("manifest %s: %w: content hashes to %s", desc.Digest, regstore.ErrDigestMismatch, got)
	}
	m, err := regstore.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	switch desc.MediaType {
	case regstore.MediaTypeDockerManifest, regstore.MediaTypeDockerManifestList, regstore.MediaTypeOCIManifest, regstore.MediaTypeOCIIndex:
		if desc.MediaType != m.MediaType() {
			return nil, fmt.Errorf("manifest %s: %w: descriptor says %q, content reads as %q", desc.Digest, regstore.ErrManifestInvalid, desc.MediaType, m.MediaType())
		}
	}
	return m, nil
}

func (s layoutSource) blob(desc v1.Descriptor) (blobRef, error) {
	if err := regstore.ValidateDigest(desc.Digest); err != nil {
		return blobRef{}, err
	}
	p := s.path(desc.Digest)
	fi, err := fs.Stat(s.fs, p)
	if err != nil {
		return blobRef{}, err
	}
	if !fi.Mode().IsRegular() {
		return blobRef{}, fmt.Errorf("%s is not a regular file: %w", p, fs.ErrNotExist)
	}
	if fi.Size() != desc.Size {
		return blobRef{}, fmt.Errorf("%w: %s has %d bytes, descriptor says %d", regstore.ErrSizeMismatch, p, fi.Size(), desc.Size)
	}
	return blobRef{digest: desc.Digest, size: desc.Size, path: p}, nil
}

// ExportOptions configures [ExportOCILayout].
type ExportOptions struct {
	// Tags are the tags to export; nil means every tag of the repository
	// (tags whose manifest is gone are left out).
	Tags []string
	// Untagged also exports every untagged manifest of the repository, as
	// index.json entries without a ref name.
	Untagged bool
	// HardLink, TrustDigests, Workers and Progress are as in
	// [ImportOptions]; hard links need the store on a [*regstore.Dir] and dst a
	// [*regstore.Dir] on the same filesystem (or the same [regstore.LinkFS] backend).
	HardLink     bool
	TrustDigests bool
	Workers      int
	Progress     func(CopyStats)
}

// ExportOCILayout writes tags of the repository, with everything they
// reference, to dst as an OCI image layout that skopeo (oci:DIR:TAG),
// crane and umoci read: blobs/<alg>/<hex> for every manifest, config and
// layer (bytes verbatim, verified while copied), the oci-layout file, and
// index.json, written last, with one entry per tag carrying the
// org.opencontainers.image.ref.name annotation. Referrers of the exported
// manifests (manifests whose subject is one of them, found by reading
// every revision of the repository) are exported too, as index.json
// entries without a ref name, as OCI 1.1 layouts list them.
//
// dst may already hold a layout: blobs it has are kept, and its index.json
// entries are kept except those for the same ref names (replaced). Its
// oci-layout must then say version 1.0.0. Every file is written
// atomically, and index.json last, so a reader never sees an entry whose
// content is missing. Layers with URLs whose data the store does not hold
// are left out, as foreign layers are.
func ExportOCILayout(ctx context.Context, r *regstore.Repository, dst regstore.WriteFS, opts ExportOptions) (CopyStats, error) {
	const op = "export oci layout"
	var stats CopyStats
	fail := func(ref, p string, err error) (CopyStats, error) { return stats, wrapErr(op, r.Name(), ref, p, err) }
	var tags []tagAssignment
	if opts.Tags == nil {
		for t, err := range r.Tags() {
			if err != nil {
				return fail("", "", err)
			}
			if m, err := t.Resolve(); err == nil {
				tags = append(tags, tagAssignment{t.Name(), m.Digest()})
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fail(t.Name(), "", err)
			}
		}
	} else {
		for _, name := range opts.Tags {
			t, err := r.Tag(name)
			if err != nil {
				return fail(name, "", err)
			}
			m, err := t.Resolve()
			if err != nil {
				return fail(name, "", err)
			}
			tags = append(tags, tagAssignment{name, m.Digest()})
		}
	}
	src := repoSource{r}
	g := newGraph()
	for _, ta := range tags {
		if err := g.addRoot(src, v1.Descriptor{Digest: ta.digest}); err != nil {
			return fail(ta.tag, "", err)
		}
	}
	if opts.Untagged {
		for d, err := range r.Manifests() {
			if err != nil {
				return fail("", "", err)
			}
			if err := g.addRoot(src, v1.Descriptor{Digest: d}); err != nil {
				return fail(d.String(), "", err)
			}
		}
	}
	if err := g.addReferrers(r); err != nil {
		return fail("", "", err)
	}
	order := g.order()
	blobs := slices.Clone(g.blobs)
	for _, m := range order {
		blobs = append(blobs, blobRef{digest: m.Digest(), size: m.Size(), path: r.Store().Layout().BlobData(m.Digest())})
	}
	opts.Workers = defaultWorkers(opts.Workers, opts.HardLink)
	prog := &progress{stats: &stats, fn: opts.Progress}
	t := &transfer{op: op, w: dst, src: src, target: layoutTarget{dst}, workers: opts.Workers,
		trust: opts.TrustDigests, prog: prog}
	if opts.HardLink {
		t.linker = newHardLinker(r.Store().FS(), dst)
	}
	if err := t.blobs(ctx, blobs); err != nil {
		return fail("", "", err)
	}
	prog.update(func(s *CopyStats) { s.Manifests += len(order) })

	if err := ensureLayoutVersion(dst); err != nil {
		return fail("", v1.ImageLayoutFile, err)
	}
	tagged := map[digest.Digest]bool{}
	var add []v1.Descriptor
	for _, ta := range tags {
		m := g.manifests[ta.digest]
		d := m.Descriptor()
		d.ArtifactType = m.ArtifactType()
		d.Annotations = map[string]string{AnnotationRefName: ta.tag}
		add = append(add, d)
		tagged[ta.digest] = true
	}
	for _, dg := range g.roots {
		if !tagged[dg] {
			m := g.manifests[dg]
			d := m.Descriptor()
			d.ArtifactType = m.ArtifactType()
			add = append(add, d)
		}
	}
	if err := mergeIndex(dst, add); err != nil {
		return fail("", "index.json", err)
	}
	prog.update(func(s *CopyStats) { s.Tags += len(tags) })
	return stats, nil
}

// ensureLayoutVersion writes oci-layout, or checks the one there.
func ensureLayoutVersion(w regstore.WriteFS) error {
	err := checkLayoutVersion(w)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	raw, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	return regstore.WriteFile(w, v1.ImageLayoutFile, bytes.NewReader(raw))
}

// mergeIndex writes index.json with the entries of the one there, less
// those add replaces (same ref name, or the same digest without one), then
// add.
func mergeIndex(w regstore.WriteFS, add []v1.Descriptor) error {
	idx := v1.Index{MediaType: v1.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	raw, err := readSmallFile(w, "index.json", regstore.MaxManifestSize)
	switch {
	case err == nil:
		var old v1.Index
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("%w: existing index.json: %w", ErrInvalidSource, err)
		}
		idx.Annotations = old.Annotations
		replaced := map[string]bool{}
		untagged := map[digest.Digest]bool{}
		for _, d := range add {
			if n := d.Annotations[AnnotationRefName]; n != "" {
				replaced[n] = true
			} else {
				untagged[d.Digest] = true
			}
		}
		for _, d := range old.Manifests {
			n := d.Annotations[AnnotationRefName]
			if (n != "" && replaced[n]) || (n == "" && untagged[d.Digest]) {
				continue
			}
			idx.Manifests = append(idx.Manifests, d)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	idx.Manifests = append(idx.Manifests, add...)
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return regstore.WriteFile(w, "index.json", bytes.NewReader(out))
}

// layoutTarget writes blobs into an OCI image layout.
type layoutTarget struct{ w regstore.WriteFS }

func (t layoutTarget) has(ref blobRef) (bool, error) {
	fi, err := fs.Stat(t.w, ociBlobPath(ref.digest))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Content addressing: a file of the right size is trusted, as the
	// registry trusts existing blob data. A wrong size is replaced.
	return fi.Mode().IsRegular() && fi.Size() == ref.size, nil
}

func (t layoutTarget) put(r io.Reader, ref blobRef) error {
	p := ociBlobPath(ref.digest)
	if err := writeVerified(t.w, p, r, ref.digest, ref.size); err != nil {
		return &regstore.Error{Op: "export oci layout", Reference: ref.digest.String(), Path: p, Err: err}
	}
	return nil
}

func (t layoutTarget) linkPath(ref blobRef) string { return ociBlobPath(ref.digest) }

func (t layoutTarget) published(blobRef) error { return nil }

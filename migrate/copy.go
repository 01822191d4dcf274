package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/hashio"
)

// CopyStats counts what a copy, import or export did. Progress callbacks
// receive the running totals.
type CopyStats struct {
	// Repositories is the number of repositories copied completely
	// ([Copy] only).
	Repositories int
	// TotalBlobs and TotalBytes are the blobs (configs and layers, and for
	// an export manifests too) to transfer. Every operation plans
	// everything before it starts, so they are known from the first
	// Progress call on. A blob that [Copy] copies into several
	// repositories counts once per repository (after the first, as
	// skipped: only its link is written).
	TotalBlobs int
	TotalBytes int64
	// Blobs and Bytes are the blobs whose content was copied, and verified
	// while it was written.
	Blobs int
	Bytes int64
	// BlobsLinked and BytesLinked are the blobs published as hard links
	// to the source's files (zero bytes copied).
	BlobsLinked int
	BytesLinked int64
	// BlobsSkipped and BytesSkipped are the blobs the target already had:
	// only their repository link was written.
	BlobsSkipped int
	BytesSkipped int64
	// Manifests is the number of manifests published; ManifestsSkipped
	// those the target already had.
	Manifests        int
	ManifestsSkipped int
	// Tags is the number of tags set (those already pointing at the right
	// manifest are not counted), or, for an export, written to index.json.
	Tags int
}

// CopyOptions configures [Copy].
type CopyOptions struct {
	// Repositories are copied whole: every tag, every revision (untagged
	// ones too) and every blob linked in them.
	Repositories []string
	// Tags selects, per repository, the tags to copy: each tag's manifest
	// with everything it references (children of an index, config,
	// layers) and its referrers (manifests whose subject is among them),
	// found by reading every revision of the repository. A repository in
	// both Tags and Repositories is copied whole.
	//
	// When both Repositories and Tags are empty, every repository of the
	// source is copied whole.
	Tags map[string][]string
	// Workers bounds the blobs (and the manifests of one level, and the
	// tags) written at once. Zero means 4, or 16 with HardLink: linking is
	// bound by metadata operations (and, on a backend without [regstore.BatchFS],
	// by the fsync of each new name, which the filesystem commits in groups
	// when they come concurrently).
	Workers int
	// HardLink publishes blob data as hard links to the source's files
	// instead of copying it, when that is possible: both stores on the
	// same backend value that implements [regstore.LinkFS] and [regstore.RenameFS] (two
	// layout roots in one [regstore.MemFS] or [regstore.Dir]), or both on [*regstore.Dir] backends
	// on one filesystem. Otherwise, and for any blob that cannot be linked
	// (another filesystem, a file of another algorithm than sha256), the
	// data is copied. A linked file shares its inode, mode and owner with
	// the source: a change made in place to one is seen in both, so use
	// it only for content that is never rewritten in place (neither the
	// registry nor this package ever does).
	HardLink bool
	// TrustDigests, with HardLink, skips reading a linked file to verify
	// its digest: only its size is checked. Copied data is always
	// verified while it is written, at no extra cost.
	TrustDigests bool
	// Progress, if set, is called with the running totals after each blob,
	// manifest and tag, from one goroutine at a time.
	Progress func(CopyStats)
}

// Copy copies repositories from src to dst, any backend to any backend, as
// a sequence of pushes would: for each repository, its blobs (each
// verified against its digest while it is written; a blob whose data dst
// already has is not read again, so a re-run resumes an interrupted copy),
// then its manifests, children before the indexes that list them and
// subjects before their referrers, then its tags. No manifest is published
// before its blobs and children, and no tag before its manifest, so a
// registry serving dst never sees a dangling pointer, even when the copy
// fails half-way (what is left then is unreferenced data and links, which
// garbage collection removes, or a re-run completes). With HardLink, on a
// backend with [regstore.BatchFS] (a [regstore.Dir]), each step is published at once, with
// one durability barrier, in the same order.
//
// What is copied (see [CopyOptions]): whole repositories keep their
// untagged revisions too, since they are still pulled by digest and
// referrers (signatures, SBOMs) are untagged by nature; run garbage
// collection with DeleteUntagged afterwards to drop them. Tags overwrite
// tags of the same name in dst; tag history (the tags' index entries
// besides the current one) is not copied. Schema1 manifests, which the v3
// registry refuses to accept, are copied as stored, after their layers.
// Blobs no repository links are not copied.
//
// A manifest whose blob or child is missing from the source fails the copy
// with an error wrapping [fs.ErrNotExist]; content that does not match its
// digest fails it with one wrapping [regstore.ErrDigestMismatch] or
// [regstore.ErrSizeMismatch], and nothing referring to that content is published.
func Copy(ctx context.Context, dst, src *regstore.Store, opts CopyOptions) (CopyStats, error) {
	var stats CopyStats
	w, err := writer(dst, "copy")
	if err != nil {
		return stats, err
	}
	opts.Workers = defaultWorkers(opts.Workers, opts.HardLink)
	plan, err := copySelection(src, opts)
	if err != nil {
		return stats, err
	}
	var linker *hardLinker
	if opts.HardLink {
		linker = newHardLinker(src.FS(), w)
	}
	prog := &progress{stats: &stats, fn: opts.Progress}
	// Plan every repository first, so that the totals are known before
	// anything is copied.
	type planned struct {
		src  *regstore.Repository
		g    *graph
		tags []tagAssignment
	}
	plans := make([]planned, 0, len(plan))
	var totalBlobs int
	var totalBytes int64
	for _, sel := range plan {
		if err := ctx.Err(); err != nil {
			return stats, &regstore.Error{Op: "copy", Repository: sel.name, Err: err}
		}
		srcRepo, err := src.Repository(sel.name)
		if err != nil {
			return stats, err
		}
		g, tags, err := planRepositoryCopy(srcRepo, sel)
		if err != nil {
			return stats, wrapErr("copy", sel.name, "", "", err)
		}
		for _, b := range g.blobs {
			totalBytes += max(b.size, 0)
		}
		totalBlobs += len(g.blobs)
		plans = append(plans, planned{srcRepo, g, tags})
	}
	prog.update(func(s *CopyStats) { s.TotalBlobs, s.TotalBytes = totalBlobs, totalBytes })
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return stats, &regstore.Error{Op: "copy", Repository: p.src.Name(), Err: err}
		}
		dstRepo, err := dst.Repository(p.src.Name())
		if err != nil {
			return stats, err
		}
		t := &transfer{
			op: "copy", w: w, src: repoSource{p.src}, target: repoTarget{dstRepo, w},
			workers: opts.Workers, linker: linker, trust: opts.TrustDigests, prog: prog, counted: true,
		}
		if err := t.run(ctx, p.g, p.tags); err != nil {
			return stats, wrapErr("copy", p.src.Name(), "", "", err)
		}
		prog.update(func(s *CopyStats) { s.Repositories++ })
	}
	return stats, nil
}

// defaultWorkers is the worker count for a Workers option of n.
func defaultWorkers(n int, hardLink bool) int {
	switch {
	case n > 0:
		return n
	case hardLink:
		return 16
	}
	return 4
}

// repoSelection is one repository to copy: whole, or by tags.
type repoSelection struct {
	name  string
	whole bool
	tags  []string
}

// copySelection lists the repositories to copy, in the source's catalog
// order for a whole store and sorted by name otherwise.
func copySelection(src *regstore.Store, opts CopyOptions) ([]repoSelection, error) {
	if len(opts.Repositories) == 0 && len(opts.Tags) == 0 {
		var out []repoSelection
		for r, err := range src.Repositories() {
			if err != nil {
				return nil, err
			}
			out = append(out, repoSelection{name: r.Name(), whole: true})
		}
		return out, nil
	}
	sel := map[string]*repoSelection{}
	for _, name := range opts.Repositories {
		sel[name] = &repoSelection{name: name, whole: true}
	}
	for name, tags := range opts.Tags {
		if s, ok := sel[name]; ok && s.whole {
			continue
		}
		sel[name] = &repoSelection{name: name, tags: tags}
	}
	var out []repoSelection
	for _, name := range slices.Sorted(maps.Keys(sel)) {
		if err := regstore.ValidateName(name); err != nil {
			return nil, &regstore.Error{Op: "copy", Repository: name, Err: err}
		}
		for _, t := range sel[name].tags {
			if err := regstore.ValidateTag(t); err != nil {
				return nil, &regstore.Error{Op: "copy", Repository: name, Reference: t, Err: err}
			}
		}
		r, err := src.Repository(name)
		if err != nil {
			return nil, err
		}
		if ok, err := r.Exists(); err != nil || !ok {
			if err == nil {
				err = fs.ErrNotExist
			}
			return nil, &regstore.Error{Op: "copy", Repository: name, Path: src.Layout().Manifests(name), Err: err}
		}
		out = append(out, *sel[name])
	}
	return out, nil
}

// tagAssignment is one tag to set once its manifest is published.
type tagAssignment struct {
	tag    string
	digest digest.Digest
}

// planRepositoryCopy loads the manifests and blobs of one repository
// selection.
func planRepositoryCopy(r *regstore.Repository, sel repoSelection) (*graph, []tagAssignment, error) {
	g := newGraph()
	src := repoSource{r}
	var tags []tagAssignment
	var roots []digest.Digest
	if sel.whole {
		for t, err := range r.Tags() {
			if err != nil {
				return nil, nil, err
			}
			d, err := t.Digest()
			if errors.Is(err, fs.ErrNotExist) {
				continue // a tag directory without a current link
			}
			if err != nil {
				return nil, nil, err
			}
			if _, err := r.ManifestBlob(d); errors.Is(err, fs.ErrNotExist) {
				continue // a tag whose manifest is gone: the registry cannot serve it either
			}
			tags = append(tags, tagAssignment{t.Name(), d})
		}
		for d, err := range r.Manifests() {
			if err != nil {
				return nil, nil, err
			}
			roots = append(roots, d)
		}
	} else {
		for _, name := range sel.tags {
			d, err := tagDigest(r, name)
			if err != nil {
				return nil, nil, err
			}
			tags = append(tags, tagAssignment{name, d})
			roots = append(roots, d)
		}
	}
	for _, d := range roots {
		if err := g.addRoot(src, v1.Descriptor{Digest: d}); err != nil {
			return nil, nil, err
		}
	}
	if sel.whole {
		// Blobs linked but referenced by no manifest, and alias links.
		for d, err := range r.Layers() {
			if err != nil {
				return nil, nil, err
			}
			ref, err := src.blob(v1.Descriptor{Digest: d})
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was listed
			}
			if err != nil {
				return nil, nil, err
			}
			g.addBlob(ref)
		}
	} else if err := g.addReferrers(r); err != nil {
		return nil, nil, err
	}
	return g, tags, nil
}

// blobRef is one blob to transfer: where the source has it, and what it
// must hash to.
type blobRef struct {
	digest    digest.Digest // as referenced; the content must hash to it
	canonical digest.Digest // its sha256 digest, when known
	size      int64
	path      string // in the source's backend
}

// source is where a transfer reads content from.
type source interface {
	fsys() fs.FS
	// manifest loads and verifies the manifest desc names. Missing is an
	// error wrapping fs.ErrNotExist.
	manifest(desc v1.Descriptor) (*regstore.Manifest, error)
	// blob locates the blob desc names. Missing is an error wrapping
	// fs.ErrNotExist.
	blob(desc v1.Descriptor) (blobRef, error)
}

// repoSource reads a repository of a store.
type repoSource struct{ r *regstore.Repository }

func (s repoSource) fsys() fs.FS { return s.r.Store().FS() }

func (s repoSource) manifest(desc v1.Descriptor) (*regstore.Manifest, error) {
	return s.r.Manifest(desc.Digest)
}

func (s repoSource) blob(desc v1.Descriptor) (blobRef, error) {
	b, err := s.r.Blob(desc.Digest)
	if err != nil {
		return blobRef{}, err
	}
	return blobRef{digest: desc.Digest, canonical: b.Digest(), size: b.Size(), path: b.Path()}, nil
}

// graph is the content one transfer moves: manifests and blobs, each once.
type graph struct {
	manifests map[digest.Digest]*regstore.Manifest
	roots     []digest.Digest // in the order added
	blobs     []blobRef
	seenBlobs map[digest.Digest]bool
}

func newGraph() *graph {
	return &graph{manifests: map[digest.Digest]*regstore.Manifest{}, seenBlobs: map[digest.Digest]bool{}}
}

// addRoot loads the manifest desc names and everything it references.
func (g *graph) addRoot(src source, desc v1.Descriptor) error {
	if err := g.add(src, desc); err != nil {
		return err
	}
	if !slices.Contains(g.roots, desc.Digest) {
		g.roots = append(g.roots, desc.Digest)
	}
	return nil
}

func (g *graph) add(src source, desc v1.Descriptor) error {
	if _, ok := g.manifests[desc.Digest]; ok {
		return nil
	}
	if desc.Digest.Algorithm() != digest.Canonical {
		return fmt.Errorf("manifest %s: %w: manifests are stored and referenced by sha256 only", desc.Digest, errors.ErrUnsupported)
	}
	m, err := src.manifest(desc)
	if err != nil {
		return err
	}
	return g.addManifest(src, m)
}

// addManifest adds a loaded manifest and everything it references.
func (g *graph) addManifest(src source, m *regstore.Manifest) error {
	if _, ok := g.manifests[m.Digest()]; ok {
		return nil
	}
	g.manifests[m.Digest()] = m
	for d := range m.Blobs() {
		ref, err := src.blob(d)
		if errors.Is(err, fs.ErrNotExist) && len(d.URLs) > 0 {
			continue // a foreign layer, fetched from its URLs
		}
		if err != nil {
			return fmt.Errorf("manifest %s: blob %s: %w", m.Digest(), d.Digest, err)
		}
		g.addBlob(ref)
	}
	for _, c := range m.Children() {
		if err := g.add(src, c); err != nil {
			return fmt.Errorf("index %s: child %s: %w", m.Digest(), c.Digest, err)
		}
	}
	return nil
}

func (g *graph) addBlob(ref blobRef) {
	if !g.seenBlobs[ref.digest] {
		g.seenBlobs[ref.digest] = true
		g.blobs = append(g.blobs, ref)
	}
}

// addReferrers adds, until none is left, every manifest of r whose
// subject is in the graph, with what it references.
func (g *graph) addReferrers(r *regstore.Repository) error {
	bySubject := map[digest.Digest][]*regstore.Manifest{}
	for d, err := range r.Manifests() {
		if err != nil {
			return err
		}
		m, err := r.Manifest(d)
		if err != nil {
			return err
		}
		if s, ok := m.Subject(); ok {
			bySubject[s.Digest] = append(bySubject[s.Digest], m)
		}
	}
	src := repoSource{r}
	for changed := true; changed; {
		changed = false
		for _, d := range slices.Sorted(maps.Keys(bySubject)) {
			if _, ok := g.manifests[d]; !ok {
				continue
			}
			for _, m := range bySubject[d] {
				if _, ok := g.manifests[m.Digest()]; ok {
					continue
				}
				if err := g.addManifest(src, m); err != nil {
					return err
				}
				g.roots = append(g.roots, m.Digest())
				changed = true
			}
		}
	}
	return nil
}

// order is every manifest of the graph, each after its children and after
// its subject when the subject is in the graph, roots in the order added.
func (g *graph) order() []*regstore.Manifest {
	var out []*regstore.Manifest
	done := map[digest.Digest]bool{}
	var visit func(d digest.Digest)
	visit = func(d digest.Digest) {
		m, ok := g.manifests[d]
		if !ok || done[d] {
			return
		}
		done[d] = true // content addressing makes cycles impossible; this also guards
		for _, c := range m.Children() {
			visit(c.Digest)
		}
		if s, ok := m.Subject(); ok {
			visit(s.Digest)
		}
		out = append(out, m)
	}
	for _, d := range g.roots {
		visit(d)
	}
	// Manifests reached only as children are already out; anything left
	// was added without a root.
	for _, d := range slices.Sorted(maps.Keys(g.manifests)) {
		visit(d)
	}
	return out
}

// levels groups the manifests of order() by level: first those that
// reference no manifest of the graph, then those that reference only
// manifests of earlier levels, and so on; each level in order() order.
func (g *graph) levels() [][]*regstore.Manifest {
	level := map[digest.Digest]int{}
	var out [][]*regstore.Manifest
	for _, m := range g.order() { // dependencies come first
		l := 0
		deps := m.Children()
		if s, ok := m.Subject(); ok {
			deps = append(deps, s)
		}
		for _, d := range deps {
			if dl, ok := level[d.Digest]; ok {
				l = max(l, dl+1)
			}
		}
		level[m.Digest()] = l
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], m)
	}
	return out
}

// target is where a transfer writes blobs.
type target interface {
	// has reports whether the target already has blob ref (and, for a
	// repository, links it there).
	has(ref blobRef) (bool, error)
	// put writes the blob, verifying it, and links it.
	put(r io.Reader, ref blobRef) error
	// linkPath is where hard-linked data must go, or "" when the blob
	// cannot be hard-linked; published finishes a hard-linked blob.
	linkPath(ref blobRef) string
	published(ref blobRef) error
}

// repoTarget writes blobs into a repository, as uploads do.
type repoTarget struct {
	r *regstore.Repository
	w regstore.WriteFS
}

func (t repoTarget) has(ref blobRef) (bool, error) {
	if ref.digest.Algorithm() != digest.Canonical {
		if _, err := t.r.Blob(ref.digest); err == nil {
			return true, nil
		}
		if ref.canonical == "" {
			return false, nil // staged and verified by PutBlob
		}
		b, err := t.r.Store().Blob(ref.canonical)
		if err != nil {
			return false, nil
		}
		// The data is there under its sha256 digest: check that it also
		// has the alias digest, then link both.
		if err := verifyFile(t.r.Store().FS(), b.Path(), ref.digest, ref.size, false); err != nil {
			return false, repoErr(t.r, "put blob", ref.digest.String(), b.Path(), err)
		}
		return true, linkBlob(t.r, t.w, ref.canonical, ref.digest)
	}
	b, err := t.r.Store().Blob(ref.digest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, repoErr(t.r, "put blob", ref.digest.String(), t.r.Store().Layout().BlobData(ref.digest), err)
	}
	if ref.size >= 0 && b.Size() != ref.size {
		return false, repoErr(t.r, "put blob", ref.digest.String(), b.Path(),
			fmt.Errorf("%w: stored blob has %d bytes, expected %d", regstore.ErrSizeMismatch, b.Size(), ref.size))
	}
	return true, linkBlob(t.r, t.w, ref.digest, "")
}

func (t repoTarget) put(rd io.Reader, ref blobRef) error {
	if ref.digest.Algorithm() != digest.Canonical {
		_, err := t.r.PutBlob(rd, ref.digest, ref.size) // data, canonical link, alias link
		return err
	}
	b, err := t.r.Store().PutBlob(rd, ref.digest, ref.size)
	if err != nil {
		var e *regstore.Error
		if errors.As(err, &e) {
			e.Repository = t.r.Name()
		}
		return err
	}
	return linkBlob(t.r, t.w, b.Digest(), "")
}

func (t repoTarget) linkPath(ref blobRef) string {
	if ref.digest.Algorithm() != digest.Canonical {
		return ""
	}
	return t.r.Store().Layout().BlobData(ref.digest)
}

func (t repoTarget) published(ref blobRef) error { return linkBlob(t.r, t.w, ref.digest, "") }

// progress holds the running totals of one operation.
type progress struct {
	mu    sync.Mutex
	stats *CopyStats
	fn    func(CopyStats)
}

// update changes the totals and reports them.
func (p *progress) update(f func(*CopyStats)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.stats)
	if p.fn != nil {
		p.fn(*p.stats)
	}
}

// transfer moves one graph from a source into a target repository.
type transfer struct {
	op      string
	w       regstore.WriteFS
	src     source
	target  target
	workers int
	linker  *hardLinker
	trust   bool
	prog    *progress
	fresh   map[digest.Digest]bool // stored by this operation already, and counted
	// counted: the blobs are in the totals already (Copy plans every
	// repository first).
	counted bool
}

// run publishes the graph bottom-up: blobs, then manifests level by level
// (a manifest's level is above its children's and its subject's), then
// tags. Within a phase or level nothing depends on anything else, so the
// items go out concurrently: a manifest is still never published before
// what it references, nor a tag before its manifest.
func (t *transfer) run(ctx context.Context, g *graph, tags []tagAssignment) error {
	rt, ok := t.target.(repoTarget)
	if !ok {
		panic("regstore: transfer.run needs a repository target")
	}
	// Batches pay off when no data is written (hard links): copying, the
	// per-file fsyncs of concurrent workers overlap with the hashing,
	// where one barrier per phase would wait for all the data at once.
	if bfs, ok := t.w.(regstore.BatchFS); ok && t.linker != nil {
		return t.runBatched(ctx, bfs, rt.r, g, tags)
	}
	if err := t.blobs(ctx, g.blobs); err != nil {
		return err
	}
	r := rt.r
	for _, level := range g.levels() {
		err := forEach(ctx, t.workers, len(level), func(i int) error {
			m := level[i]
			if _, err := r.ManifestBlob(m.Digest()); err == nil {
				t.prog.update(func(s *CopyStats) { s.ManifestsSkipped++ })
				return nil
			}
			if err := putManifestAsStored(r, t.w, m); err != nil {
				return err
			}
			t.prog.update(func(s *CopyStats) { s.Manifests++ })
			return nil
		})
		if err != nil {
			return wrapErr(t.op, r.Name(), "", "", err)
		}
	}
	err := forEach(ctx, t.workers, len(tags), func(i int) error {
		ta := tags[i]
		if cur, err := tagDigest(r, ta.tag); err == nil && cur == ta.digest {
			return nil // in place already
		}
		if err := setTag(r, t.w, ta.tag, ta.digest); err != nil {
			return err
		}
		t.prog.update(func(s *CopyStats) { s.Tags++ })
		return nil
	})
	if err != nil {
		return wrapErr(t.op, r.Name(), "", "", err)
	}
	return nil
}

// runBatched is run on a backend with [regstore.BatchFS]: the same order, with each
// phase published at once, in one durability barrier, rather than name by
// name. The phases, each published (and so durable) before the next one
// starts, are:
//
//  1. data: every sha256 blob (hard link or verified copy) and the data of
//     every manifest to publish. Nothing points at these yet.
//  2. the _layers link of every blob not linked already (blobs of other
//     algorithms, rare, are transferred one by one between phases 1 and 2).
//  3. the revision links, one phase per level of the manifest graph, each
//     manifest checked first as a push would be (its blobs linked, its
//     children published, by earlier phases).
//  4. the tags' index entries, then
//  5. their current links.
//
// A crash leaves every name of the phases published complete and durable,
// some names of the phase being published, and temporary files; never a
// pointer without its target.
func (t *transfer) runBatched(ctx context.Context, bfs regstore.BatchFS, r *regstore.Repository, g *graph, tags []tagAssignment) (err error) {
	b, err := bfs.Batch()
	if err != nil {
		return wrapErr(t.op, r.Name(), "", "", err)
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	publish := func() error {
		if err := b.Publish(); err != nil {
			return wrapErr(t.op, r.Name(), "", "", err)
		}
		return nil
	}

	// Phase 1: data.
	var total int64
	var canonical, aliases []blobRef
	for _, ref := range g.blobs {
		total += max(ref.size, 0)
		if ref.digest.Algorithm() == digest.Canonical {
			canonical = append(canonical, ref)
		} else {
			aliases = append(aliases, ref)
		}
	}
	if !t.counted {
		t.prog.update(func(s *CopyStats) { s.TotalBlobs += len(g.blobs); s.TotalBytes += total })
	}
	var todo []*regstore.Manifest // manifests whose revision link is to be written
	skip := map[digest.Digest]bool{}
	for _, m := range g.order() {
		if _, err := r.ManifestBlob(m.Digest()); err == nil {
			skip[m.Digest()] = true
		} else {
			todo = append(todo, m)
		}
	}
	err = forEach(ctx, t.workers, len(canonical)+len(todo), func(i int) error {
		if i < len(canonical) {
			return t.stageBlob(b, r, canonical[i])
		}
		m := todo[i-len(canonical)]
		return t.stageData(b, r, m.Digest(), m.Size(), m.Bytes())
	})
	if err != nil {
		return err
	}
	if err := publish(); err != nil {
		return err
	}

	// Blobs of other algorithms, one by one, on top of durable data.
	if len(aliases) > 0 {
		if err := b.Sync(); err != nil {
			return wrapErr(t.op, r.Name(), "", "", err)
		}
		if err := forEach(ctx, t.workers, len(aliases), func(i int) error { return t.blob(aliases[i]) }); err != nil {
			return err
		}
	}

	// Phase 2: the blobs' _layers links.
	err = forEach(ctx, t.workers, len(canonical), func(i int) error {
		d := canonical[i].digest
		if cur, err := regstore.ReadLink(r.Store().FS(), r.Store().Layout().LayerLink(r.Name(), d)); err == nil && cur == d {
			return nil // in place already
		}
		return linkBlob(r, b, d, "")
	})
	if err != nil {
		return err
	}
	if err := publish(); err != nil {
		return err
	}

	// Phase 3: revision links, level by level.
	for _, level := range g.levels() {
		err := forEach(ctx, t.workers, len(level), func(i int) error {
			m := level[i]
			if skip[m.Digest()] {
				t.prog.update(func(s *CopyStats) { s.ManifestsSkipped++ })
				return nil
			}
			if err := checkStored(r, m); err != nil {
				return repoErr(r, "put manifest", m.Digest().String(), "", err)
			}
			p := r.Store().Layout().RevisionLink(r.Name(), m.Digest())
			if err := regstore.WriteLink(b, p, m.Digest()); err != nil {
				return repoErr(r, "put manifest", m.Digest().String(), p, err)
			}
			t.prog.update(func(s *CopyStats) { s.Manifests++ })
			return nil
		})
		if err != nil {
			return wrapErr(t.op, r.Name(), "", "", err)
		}
		if err := publish(); err != nil {
			return err
		}
	}

	// Phases 4 and 5: tags, index entries before current links.
	var set []tagAssignment
	for _, ta := range tags {
		if cur, err := tagDigest(r, ta.tag); err != nil || cur != ta.digest {
			set = append(set, ta)
		}
	}
	for _, current := range []bool{false, true} {
		err := forEach(ctx, t.workers, len(set), func(i int) error {
			ta := set[i]
			p := r.Store().Layout().TagIndexLink(r.Name(), ta.tag, ta.digest)
			if current {
				p = r.Store().Layout().TagCurrent(r.Name(), ta.tag)
			}
			if err := regstore.WriteLink(b, p, ta.digest); err != nil {
				return repoErr(r, "set tag", ta.tag, p, err)
			}
			if current {
				t.prog.update(func(s *CopyStats) { s.Tags++ })
			}
			return nil
		})
		if err != nil {
			return wrapErr(t.op, r.Name(), "", "", err)
		}
		if err := publish(); err != nil {
			return err
		}
	}
	if err := b.Sync(); err != nil {
		return wrapErr(t.op, r.Name(), "", "", err)
	}
	return nil
}

// stageBlob stages the data of a sha256 blob in b, unless the store has it:
// a hard link when possible, a verified copy otherwise.
func (t *transfer) stageBlob(b regstore.WriteBatch, r *regstore.Repository, ref blobRef) error {
	if have, err := r.Store().Blob(ref.digest); err == nil {
		if ref.size >= 0 && have.Size() != ref.size {
			return repoErr(r, "put blob", ref.digest.String(), have.Path(),
				fmt.Errorf("%w: stored blob has %d bytes, expected %d", regstore.ErrSizeMismatch, have.Size(), ref.size))
		}
		if !t.fresh[ref.digest] {
			t.prog.update(func(s *CopyStats) { s.BlobsSkipped++; s.BytesSkipped += ref.size })
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return repoErr(r, "put blob", ref.digest.String(), r.Store().Layout().BlobData(ref.digest), err)
	}
	p := r.Store().Layout().BlobData(ref.digest)
	if t.linker != nil {
		linked, err := t.linker.link(b, ref.path, p, ref.digest, ref.size, t.trust)
		if err != nil {
			return &regstore.Error{Op: t.op, Reference: ref.digest.String(), Path: ref.path, Err: err}
		}
		if linked {
			t.prog.update(func(s *CopyStats) { s.BlobsLinked++; s.BytesLinked += ref.size })
			return nil
		}
	}
	f, err := openRegular(t.src.fsys(), ref.path)
	if err != nil {
		return &regstore.Error{Op: t.op, Reference: ref.digest.String(), Path: ref.path, Err: err}
	}
	defer f.Close()
	if err := writeVerified(b, p, f, ref.digest, ref.size); err != nil {
		return repoErr(r, "put blob", ref.digest.String(), p, err)
	}
	t.prog.update(func(s *CopyStats) { s.Blobs++; s.Bytes += ref.size })
	return nil
}

// stageData stages the data of a manifest in b, unless the store has it.
func (t *transfer) stageData(b regstore.WriteBatch, r *regstore.Repository, d digest.Digest, size int64, raw []byte) error {
	p := r.Store().Layout().BlobData(d)
	if have, err := r.Store().Blob(d); err == nil {
		if have.Size() != size {
			return repoErr(r, "put manifest", d.String(), p,
				fmt.Errorf("%w: stored blob has %d bytes, expected %d", regstore.ErrSizeMismatch, have.Size(), size))
		}
		return nil
	}
	// raw is what d was computed from when the manifest was loaded: no
	// need to hash it again.
	if err := regstore.WriteFile(b, p, bytes.NewReader(raw)); err != nil {
		return repoErr(r, "put manifest", d.String(), p, err)
	}
	return nil
}

// checkStored applies to a manifest whose data is stored the checks of
// [regstore.Repository.PutManifest] (the registry's push validation), or, for a
// schema1 manifest, which cannot be pushed, that its blobs are linked.
func checkStored(r *regstore.Repository, m *regstore.Manifest) error {
	if m.MediaType() != regstore.MediaTypeDockerSchema1Signed {
		return r.CheckReferences(m)
	}
	for d := range m.Blobs() {
		if _, err := r.Blob(d.Digest); err != nil {
			return fmt.Errorf("%w: blob %s: %w", regstore.ErrManifestBlobUnknown, d.Digest, err)
		}
	}
	return nil
}

// putManifestAsStored publishes a manifest whose blobs and children are in
// place: with the registry's push validation, or, for schema1 manifests
// (which cannot be pushed), data then revision link.
func putManifestAsStored(r *regstore.Repository, w regstore.WriteFS, m *regstore.Manifest) error {
	if m.MediaType() != regstore.MediaTypeDockerSchema1Signed {
		_, err := r.PutManifest("", m.Bytes())
		return err
	}
	for d := range m.Blobs() {
		if _, err := r.Blob(d.Digest); err != nil {
			return repoErr(r, "put manifest", m.Digest().String(), "", fmt.Errorf("%w: blob %s: %w", regstore.ErrManifestBlobUnknown, d.Digest, err))
		}
	}
	if _, err := r.Store().PutBlob(bytes.NewReader(m.Bytes()), m.Digest(), m.Size()); err != nil {
		return err
	}
	p := r.Store().Layout().RevisionLink(r.Name(), m.Digest())
	if err := regstore.WriteLink(w, p, m.Digest()); err != nil {
		return repoErr(r, "put manifest", m.Digest().String(), p, err)
	}
	return nil
}

// blobs transfers blobs on at most t.workers goroutines.
func (t *transfer) blobs(ctx context.Context, refs []blobRef) error {
	var total int64
	for _, b := range refs {
		total += max(b.size, 0)
	}
	if !t.counted {
		t.prog.update(func(s *CopyStats) { s.TotalBlobs += len(refs); s.TotalBytes += total })
	}
	// sha256 digests first, so that an alias of another algorithm finds
	// its data in place when it is transferred too.
	var canonical, aliases []blobRef
	for _, b := range refs {
		if b.digest.Algorithm() == digest.Canonical {
			canonical = append(canonical, b)
		} else {
			aliases = append(aliases, b)
		}
	}
	for _, pass := range [][]blobRef{canonical, aliases} {
		if err := forEach(ctx, t.workers, len(pass), func(i int) error { return t.blob(pass[i]) }); err != nil {
			return err
		}
	}
	return nil
}

// blob transfers one blob: nothing when the target has it, a hard link
// when possible, a verified copy otherwise.
func (t *transfer) blob(ref blobRef) error {
	ok, err := t.target.has(ref)
	if err != nil {
		return err
	}
	if ok {
		if !t.fresh[ref.digest] {
			t.prog.update(func(s *CopyStats) { s.BlobsSkipped++; s.BytesSkipped += ref.size })
		}
		return nil
	}
	if t.linker != nil {
		if p := t.target.linkPath(ref); p != "" {
			linked, err := t.linker.link(t.w, ref.path, p, ref.digest, ref.size, t.trust)
			if err != nil {
				return &regstore.Error{Op: t.op, Reference: ref.digest.String(), Path: ref.path, Err: err}
			}
			if linked {
				if err := t.target.published(ref); err != nil {
					return err
				}
				t.prog.update(func(s *CopyStats) { s.BlobsLinked++; s.BytesLinked += ref.size })
				return nil
			}
		}
	}
	f, err := openRegular(t.src.fsys(), ref.path)
	if err != nil {
		return &regstore.Error{Op: t.op, Reference: ref.digest.String(), Path: ref.path, Err: err}
	}
	defer f.Close()
	if err := t.target.put(f, ref); err != nil {
		return err
	}
	t.prog.update(func(s *CopyStats) { s.Blobs++; s.Bytes += ref.size })
	return nil
}

// forEach runs fn(0..n-1) on at most workers goroutines and returns the
// first error, after which no new item starts; it stops too when ctx is
// done.
func forEach(ctx context.Context, workers, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(max(workers, 1), n) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// hardLinker publishes files of a source backend in a target backend as
// hard links: within one backend through [regstore.LinkFS], or between two [*regstore.Dir]
// backends through the operating system.
type hardLinker struct {
	src          fs.FS
	dst          regstore.WriteFS
	osSrc, osDst *regstore.Dir // set for links between two Dirs
	off          atomic.Bool
}

// newHardLinker returns a linker from src to dst, or nil when no hard link
// between them is possible.
func newHardLinker(src fs.FS, dst regstore.WriteFS) *hardLinker {
	if sameBackend(src, dst) {
		if _, ok := dst.(regstore.LinkFS); ok {
			if _, ok := dst.(regstore.RenameFS); ok {
				return &hardLinker{src: src, dst: dst}
			}
		}
		return nil
	}
	sd, ok1 := src.(*regstore.Dir)
	dd, ok2 := dst.(*regstore.Dir)
	if ok1 && ok2 {
		return &hardLinker{src: src, dst: dst, osSrc: sd, osDst: dd}
	}
	return nil
}

// sameBackend reports whether a and b are the same backend value.
func sameBackend(a, b any) bool {
	ta := reflect.TypeOf(a)
	if ta == nil || ta != reflect.TypeOf(b) || !ta.Comparable() {
		return false
	}
	return a == b
}

// link publishes srcPath at dstPath as a hard link, renaming it into place
// through pub (the target backend, or a batch of it). Unless trust, the
// linked file is read and must hash to d; its size must be size (if not
// negative). It returns false, with no error, when the link cannot be
// made (then the caller copies); a mismatch is an error and publishes
// nothing.
//
// Between two Dirs the link is first made at a temporary name at the top
// of the target directory, where no component of the path can be a
// symbolic link placed inside the tree, and it is checked to be the same
// file the source's traversal-resistant open finds; then it is renamed
// into place inside the target's os.Root.
func (l *hardLinker) link(pub regstore.WriteFS, srcPath, dstPath string, d digest.Digest, size int64, trust bool) (ok bool, err error) {
	if l.off.Load() {
		return false, nil
	}
	var tmp string
	var made []string
	var tmpInfo fs.FileInfo // of the linked file, when known
	if l.osSrc != nil {
		srcInfo, err := l.osSrc.Stat(srcPath)
		if err != nil || !srcInfo.Mode().IsRegular() {
			return false, nil
		}
		tmp = ".regstore-link-" + rand.Text() + ".tmp"
		err = os.Link(filepath.Join(l.osSrc.Name(), filepath.FromSlash(srcPath)), filepath.Join(l.osDst.Name(), tmp))
		if err != nil {
			var le *os.LinkError
			if errors.As(err, &le) && errors.Is(le.Err, syscall.EXDEV) {
				l.off.Store(true) // another filesystem: no link will work
			}
			return false, nil
		}
		tmpInfo, err = l.osDst.Stat(tmp)
		if err != nil || !os.SameFile(srcInfo, tmpInfo) {
			_ = regstore.Remove(l.dst, tmp)
			return false, nil
		}
	} else {
		made = missingDirs(l.dst, path.Dir(dstPath))
		tmp = dstPath + "." + rand.Text() + ".tmp"
		if err := l.dst.(regstore.LinkFS).Link(srcPath, tmp); err != nil {
			removeEmptyDirs(l.dst, made)
			return false, nil
		}
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, regstore.Remove(l.dst, tmp))
			removeEmptyDirs(l.dst, made)
		}
	}()
	if trust && tmpInfo != nil {
		if size >= 0 && tmpInfo.Size() != size {
			return false, fmt.Errorf("%w: file has %d bytes, expected %d", regstore.ErrSizeMismatch, tmpInfo.Size(), size)
		}
	} else if err := verifyFile(l.dst, tmp, d, size, trust); err != nil {
		return false, err
	}
	if err := regstore.Rename(pub, tmp, dstPath); err != nil {
		return false, err
	}
	return true, nil
}

// verifyFile checks that the file name hashes to d (unless trust) and has
// size bytes (unless size is negative).
func verifyFile(fsys fs.FS, name string, d digest.Digest, size int64, trust bool) error {
	if trust {
		if size < 0 {
			return nil
		}
		fi, err := fs.Stat(fsys, name)
		if err != nil {
			return err
		}
		if fi.Size() != size {
			return fmt.Errorf("%w: file has %d bytes, expected %d", regstore.ErrSizeMismatch, fi.Size(), size)
		}
		return nil
	}
	f, err := openRegular(fsys, name)
	if err != nil {
		return err
	}
	defer f.Close()
	h := d.Algorithm().Hash()
	n, err := io.CopyBuffer(h, f, make([]byte, hashio.BufferSize))
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: read %d bytes, expected %d", regstore.ErrSizeMismatch, n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return fmt.Errorf("%w: content hashes to %s, expected %s", regstore.ErrDigestMismatch, got, d)
	}
	return nil
}

// missingDirs lists dir and those of its parents that do not exist,
// deepest first.
func missingDirs(fsys fs.FS, dir string) []string {
	var out []string
	for ; dir != "."; dir = path.Dir(dir) {
		if _, err := fs.Stat(fsys, dir); err == nil {
			break
		}
		out = append(out, dir)
	}
	return out
}

// removeEmptyDirs removes dirs, deepest first, stopping at the first one
// that cannot go (another writer has put something in it).
func removeEmptyDirs(w regstore.WriteFS, dirs []string) {
	for _, d := range dirs {
		if w.Remove(d) != nil {
			return
		}
	}
}

// writeVerified publishes r at name in w, hashing it with want's algorithm
// while it is written: content that does not hash to want, or is not size
// bytes long (unless size is negative), is discarded with an error wrapping
// ErrDigestMismatch or ErrSizeMismatch.
func writeVerified(w regstore.WriteFS, name string, r io.Reader, want digest.Digest, size int64) (err error) {
	fw, err := w.Create(name)
	if err != nil {
		return err
	}
	committing := false
	defer func() {
		if err != nil && !committing {
			err = errors.Join(err, fw.Cancel())
		}
	}()
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
	h := want.Algorithm().Hash()
	n, err := hashio.Copy(fw, r, h)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: read %d bytes, expected %d", regstore.ErrSizeMismatch, n, size)
	}
	if got := digest.NewDigest(want.Algorithm(), h); got != want {
		return fmt.Errorf("%w: content hashes to %s, expected %s", regstore.ErrDigestMismatch, got, want)
	}
	committing = true
	return fw.Commit()
}

func repoErr(r *regstore.Repository, op, ref, path string, err error) error {
	return &regstore.Error{Op: op, Repository: r.Name(), Reference: ref, Path: path, Err: err}
}

// tagDigest is what tag name of r points at.
func tagDigest(r *regstore.Repository, name string) (digest.Digest, error) {
	t, err := r.Tag(name)
	if err != nil {
		return "", err
	}
	return t.Digest()
}

// linkBlob writes through w the _layers links of r for canonical and, if
// different, alias, both naming canonical, as a completed upload does.
func linkBlob(r *regstore.Repository, w regstore.WriteFS, canonical, alias digest.Digest) error {
	ds := []digest.Digest{canonical}
	if alias != "" && alias != canonical {
		ds = append(ds, alias)
	}
	for _, d := range ds {
		p := r.Store().Layout().LayerLink(r.Name(), d)
		if err := regstore.WriteLink(w, p, canonical); err != nil {
			return repoErr(r, "put blob", d.String(), p, err)
		}
	}
	return nil
}

// setTag writes through w tag's index entry for d, then its current link,
// as a tag push does.
func setTag(r *regstore.Repository, w regstore.WriteFS, tag string, d digest.Digest) error {
	l := r.Store().Layout()
	for _, p := range []string{l.TagIndexLink(r.Name(), tag, d), l.TagCurrent(r.Name(), tag)} {
		if err := regstore.WriteLink(w, p, d); err != nil {
			return repoErr(r, "set tag", tag, p, err)
		}
	}
	return nil
}

// quote is b for a message, cut at 80 bytes.
func quote(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// writer is the store's write side; its error names op.
func writer(s *regstore.Store, op string) (regstore.WriteFS, error) {
	w, err := s.Writer()
	if e := (*regstore.Error)(nil); errors.As(err, &e) {
		e.Op = op
	}
	return w, err
}

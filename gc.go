package regstore

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// DefaultGrace is the grace window of garbage collection when
// [GCOptions].Grace is zero: nothing written less than an hour before the
// collection started is removed.
const DefaultGrace = time.Hour

// GCOptions configures [Store.PlanGC] and [Store.ApplyGC].
type GCOptions struct {
	// DeleteUntagged also removes manifests no tag points at (directly, or
	// through an index or manifest list that is kept), like the registry's
	// --delete-untagged.
	DeleteUntagged bool
	// DropOrphanReferrers also removes, with DeleteUntagged, untagged
	// manifests whose subject is not in their repository. By default they
	// are kept. A referrer whose subject is kept is always kept.
	DropOrphanReferrers bool
	// Grace protects what was written recently: no blob data, link or
	// revision whose modification time is after (start - Grace) is removed,
	// and what young links point at is kept. Zero means [DefaultGrace]; a
	// negative value turns the window off, which is safe only while no one
	// writes to the tree.
	Grace time.Duration
	// Workers bounds the repositories marked, and the files removed, at
	// once. Zero means 4.
	Workers int
	// Progress, if set, is called as the work advances, from one goroutine
	// at a time.
	Progress func(GCProgress)
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
}

// GCProgress reports how far a collection has come.
type GCProgress struct {
	Phase        string // "mark", "sweep"
	Repositories int    // repositories marked so far
	Removed      int    // files or directories removed so far
}

// GCPlan is what a collection would remove. It is a plain value: it
// serialises to JSON, and [Store.ApplyGC] re-validates every item against
// the tree before removing it.
type GCPlan struct {
	Started time.Time `json:"started"`
	// Cutoff is Started less the grace window: nothing modified after it
	// is removed.
	Cutoff time.Time `json:"cutoff"`
	// Blobs is the blob data to remove, sorted.
	Blobs []digest.Digest `json:"blobs"`
	// LayerLinks are the _layers links to remove, per repository.
	LayerLinks map[string][]digest.Digest `json:"layerLinks"`
	// Manifests are the revisions to remove (with -delete-untagged), per
	// repository; their tag index entries go with them.
	Manifests map[string][]digest.Digest `json:"manifests"`
	// Bytes is the size of the blob data to remove.
	Bytes int64 `json:"bytes"`
	// Marked counts the manifests and blobs kept.
	Marked int `json:"marked"`
}

func (o *GCOptions) defaults() {
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// repoMarks is what marking one repository found.
type repoMarks struct {
	repo       *Repository
	intern     func(digest.Digest) digest.Digest
	marked     map[digest.Digest]bool // manifests and blobs kept from this repository
	candidates []digest.Digest        // untagged manifests not (yet) kept
	subjects   map[digest.Digest]digest.Digest
	manifests  map[digest.Digest]bool      // revisions present
	cache      map[digest.Digest]*Manifest // while marking only
	links      []linkInfo                  // _layers links
}

type linkInfo struct {
	path   digest.Digest // digest in the link's path
	target digest.Digest
	young  bool
}

// PlanGC marks what is in use and returns what a sweep would remove,
// without changing anything: the registry's garbage-collect --dry-run, with
// these deliberate differences: untagged manifests in a repository without a
// tags directory lose their revision links too (the registry leaves them
// dangling); referrers of kept manifests are kept; index children are
// followed in every repository that holds them; schema1 manifests are read,
// not fatal; a _layers link goes only when its blob goes (the registry
// judges a link against the marks of the repositories walked before it, so
// it can unlink a blob that a later repository keeps); and nothing younger
// than the grace window goes.
//
// Marking reads manifests: a manifest that cannot be read ends the plan with
// an error, since what it references would otherwise be lost.
func (s *Store) PlanGC(ctx context.Context, opts GCOptions) (*GCPlan, error) {
	opts.defaults()
	plan := &GCPlan{Started: opts.Now(), Blobs: []digest.Digest{}, LayerLinks: map[string][]digest.Digest{}, Manifests: map[string][]digest.Digest{}}
	plan.Cutoff = plan.Started.Add(-opts.Grace)
	if opts.Grace < 0 {
		plan.Cutoff = plan.Started.Add(time.Hour * 24 * 365 * 100)
	}

	// The repositories and, at the same time, one listing of the blob
	// directories: it answers "does the target exist" for every link,
	// instead of a stat per link. Only the blobs left unmarked are
	// stat'ed, in the sweep.
	var (
		repos   []*Repository
		files   map[string]*repoFiles
		err     error
		blobs   map[digest.Digest]digest.Digest
		listed  map[digest.Digest]fs.FileInfo
		blobErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() { blobs, listed, blobErr = s.blobDirs() })
	if _, flat := s.fsys.(WalkFS); flat {
		repos, files, err = s.listRepositories()
	} else {
		repos, err = collectRepos(s)
	}
	wg.Wait()
	if err = errors.Join(err, blobErr); err != nil {
		return nil, err
	}
	exists := func(d digest.Digest) bool { _, ok := blobs[d]; return ok }
	// intern returns the listing's copy of d, so that the marks and links
	// of every repository share one string per blob.
	intern := func(d digest.Digest) digest.Digest {
		if c, ok := blobs[d]; ok {
			return c
		}
		return d
	}
	results := make([]*repoMarks, len(repos))
	err = parallel(ctx, opts.Workers, len(repos), func(i int) error {
		rm, err := s.markRepository(repos[i], files[repos[i].name], plan.Cutoff, opts, exists, intern)
		results[i] = rm
		return err
	}, func(done int) {
		if opts.Progress != nil {
			opts.Progress(GCProgress{Phase: "mark", Repositories: done})
		}
	})
	if err != nil {
		return nil, err
	}

	// The mark set is global. Referrers follow their subjects; untagged
	// manifests marked anywhere survive.
	marked := map[digest.Digest]bool{}
	for _, rm := range results {
		maps.Copy(marked, rm.marked)
		if len(rm.subjects) == 0 {
			rm.marked, rm.manifests = nil, nil // no referrers to settle
		}
	}
	for _, rm := range results {
		if err := s.keepReferrers(rm, marked, opts); err != nil {
			return nil, err
		}
	}
	for _, rm := range results {
		for _, d := range rm.candidates {
			if !marked[d] {
				plan.Manifests[rm.repo.name] = append(plan.Manifests[rm.repo.name], d)
			}
		}
		// A _layers link goes only when its blob goes. (The registry judges
		// links against the marks of the repositories walked before, so it
		// may unlink a blob another repository keeps; we do not.)
		for _, l := range rm.links {
			if !marked[l.target] && !l.young {
				if l.path == "" {
					l.path = l.target
				}
				plan.LayerLinks[rm.repo.name] = append(plan.LayerLinks[rm.repo.name], l.path)
			}
		}
	}
	plan.Marked = len(marked)

	// The unmarked blobs, stat'ed on the workers unless the listing had
	// their FileInfo.
	var unmarked []digest.Digest
	for d := range blobs {
		if !marked[d] {
			unmarked = append(unmarked, d)
		}
	}
	infos := make([]fs.FileInfo, len(unmarked))
	err = parallel(ctx, opts.Workers, len(unmarked), func(i int) error {
		d := unmarked[i]
		fi, ok := listed[d]
		var err error
		if !ok {
			fi, err = fs.Stat(s.fsys, s.layout.BlobData(d))
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Data an interrupted collection moved aside, which ApplyGC
			// puts back first; or an empty blob directory.
			fi, err = fs.Stat(s.fsys, s.layout.BlobData(d)+asideSuffix)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		infos[i] = fi
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	for i, fi := range infos {
		if fi == nil || fi.IsDir() || fi.ModTime().After(plan.Cutoff) {
			continue
		}
		plan.Blobs = append(plan.Blobs, unmarked[i])
		plan.Bytes += fi.Size()
	}
	slices.Sort(plan.Blobs)
	return plan, nil
}

func collectRepos(s *Store) ([]*Repository, error) {
	var repos []*Repository
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		repos = append(repos, r)
	}
	return repos, nil
}

// repoFiles is what one flat listing of repositories/ found in one
// repository: its link files with their listing's FileInfo. Nothing is
// read yet.
type repoFiles struct {
	current   map[string]linkFile        // tag -> tags/<tag>/current/link
	index     map[string][]digest.Digest // tag -> its index entries
	revisions []linkFile
	layers    []linkFile
}

// linkFile is a link found by a listing; d is the digest its path names
// ("" for a tag's current link).
type linkFile struct {
	path string
	d    digest.Digest
	info fs.FileInfo
}

// listRepositories lists every repository's links at once, through the
// flat listing of a WalkFS backend. It returns the repositories in catalog
// order.
func (s *Store) listRepositories() ([]*Repository, map[string]*repoFiles, error) {
	root := s.layout.Repositories()
	files := map[string]*repoFiles{}
	get := func(repo string) *repoFiles {
		f := files[repo]
		if f == nil {
			f = &repoFiles{current: map[string]linkFile{}, index: map[string][]digest.Digest{}}
			files[repo] = f
		}
		return f
	}
	hasManifests := map[string]bool{}
	err := walkFiles(s.fsys, root, func(p string, fi fs.FileInfo) error {
		rel := strings.TrimPrefix(p, s.layout.Root()+"/")
		e := classify(rel, false)
		c := strings.Split(rel, "/")
		if i := slicesIndexUnderscore(c); i > 1 && c[i] == "_manifests" {
			hasManifests[strings.Join(c[1:i], "/")] = true
		}
		if e.Repository == "" || (e.Digest == "" && e.Kind != TagCurrentLink) {
			return nil
		}
		l := linkFile{path: p, d: e.Digest, info: fi}
		switch e.Kind {
		case TagCurrentLink:
			get(e.Repository).current[e.Tag] = l
		case TagIndexLink:
			f := get(e.Repository)
			f.index[e.Tag] = append(f.index[e.Tag], e.Digest)
		case RevisionLink:
			f := get(e.Repository)
			f.revisions = append(f.revisions, l)
		case LayerLink:
			f := get(e.Repository)
			f.layers = append(f.layers, l)
		}
		return nil
	})
	if err != nil {
		return nil, nil, &Error{Op: "list repositories", Path: root, Err: err}
	}
	names := slices.SortedFunc(maps.Keys(hasManifests), func(a, b string) int {
		return compareKeys(repoKey(a), repoKey(b))
	})
	var repos []*Repository
	for _, name := range names {
		if ValidateName(name) == nil {
			repos = append(repos, &Repository{s: s, name: name})
		}
	}
	return repos, files, nil
}

// target reads link l, or takes its target from the listing when the
// backend reports the content's MD5 ([ContentMD5]) and it is that of one of
// the candidates: a link holds exactly its target's digest string.
func (s *Store) target(l linkFile, candidates ...digest.Digest) (digest.Digest, error) {
	if l.info != nil {
		if c, ok := l.info.Sys().(ContentMD5); ok {
			if sum, ok := c.ContentMD5(); ok {
				for _, d := range candidates {
					if d != "" && md5.Sum([]byte(d)) == sum {
						return d, nil
					}
				}
			}
		}
	}
	return readLink(s.fsys, l.path)
}

// isYoung reports whether link l was modified after cutoff, from its
// listing's FileInfo when there is one.
func (s *Store) isYoung(l linkFile, cutoff time.Time) bool {
	if l.info != nil {
		return l.info.ModTime().After(cutoff)
	}
	return s.young(l.path, cutoff)
}

// markRepository marks from the roots of one repository: every manifest
// (or with DeleteUntagged only tagged ones and young ones), recursively
// through index children held in the same repository. Each revision link
// and manifest is read once; with files (from a flat listing) links whose
// content the listing proves are not read at all.
func (s *Store) markRepository(r *Repository, files *repoFiles, cutoff time.Time, opts GCOptions, exists func(digest.Digest) bool, intern func(digest.Digest) digest.Digest) (*repoMarks, error) {
	rm := &repoMarks{repo: r, intern: intern, marked: map[digest.Digest]bool{}, subjects: map[digest.Digest]digest.Digest{},
		manifests: map[digest.Digest]bool{}, cache: map[digest.Digest]*Manifest{}}
	defer func() { rm.cache = nil }()
	if files == nil {
		var err error
		if files, err = s.repoLinkFiles(r); err != nil {
			return nil, err
		}
	}
	tagged := map[digest.Digest]bool{}
	for _, tag := range slices.Sorted(maps.Keys(files.current)) {
		d, err := s.target(files.current[tag], files.index[tag]...)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, r.err("gc", tag, files.current[tag].path, err)
		}
		tagged[d] = true
	}
	young := map[digest.Digest]bool{}
	for _, l := range files.revisions {
		target, err := s.target(l, l.d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, r.err("gc", "", l.path, err)
		}
		m, err := r.readManifestData(target)
		if errors.Is(err, fs.ErrNotExist) {
			continue // dangling: the registry skips it too
		}
		if err != nil {
			return nil, err
		}
		rm.manifests[target] = true
		rm.cache[target] = m
		if s.isYoung(l, cutoff) {
			young[target] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(rm.manifests)) {
		if opts.DeleteUntagged && !tagged[d] && !young[d] {
			rm.candidates = append(rm.candidates, d)
			if subj, ok := rm.cache[d].Subject(); ok {
				rm.subjects[d] = subj.Digest
			}
			continue
		}
		if err := rm.mark(d); err != nil {
			return nil, err
		}
	}
	for _, l := range files.layers {
		// A sha256 path's link is not read: the registry writes it with
		// exactly that digest, and judges it, as here, by the digest in
		// its path (one that says otherwise is corruption, which Check
		// reports). Kept ones are not even looked at.
		target := l.d
		if l.d.Algorithm() == digest.Canonical {
			if rm.marked[l.d] {
				continue
			}
		} else {
			var err error
			target, err = s.target(l, l.d)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, r.err("gc", l.d.String(), l.path, err)
			}
		}
		if !exists(target) {
			// Not listed: dangling (the registry skips it too), or data
			// written since the listing, which a stat finds.
			if _, err := s.statBlob(target); err != nil {
				continue
			}
		}
		target = intern(target)
		young := s.isYoung(l, cutoff)
		if young {
			rm.marked[target] = true // a young link protects its blob
		}
		d := l.d
		if d == target {
			d = "" // the usual case; only an alias link keeps its own digest
		}
		rm.links = append(rm.links, linkInfo{path: d, target: target, young: young})
	}
	return rm, nil
}

// repoLinkFiles lists the links of r directory by directory, for backends
// without a flat listing. Link files are not opened (a missing one reads as
// fs.ErrNotExist later).
func (s *Store) repoLinkFiles(r *Repository) (*repoFiles, error) {
	f := &repoFiles{current: map[string]linkFile{}, index: map[string][]digest.Digest{}}
	for t, err := range r.Tags() {
		if err != nil {
			return nil, err
		}
		f.current[t.name] = linkFile{path: s.layout.TagCurrent(r.name, t.name)}
	}
	err := walkLinks(s.fsys, s.layout.Revisions(r.name), func(p string, d digest.Digest) error {
		f.revisions = append(f.revisions, linkFile{path: p, d: d})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = walkLinks(s.fsys, s.layout.Layers(r.name), func(p string, d digest.Digest) error {
		f.layers = append(f.layers, linkFile{path: p, d: d})
		return nil
	})
	return f, err
}

// readManifestData reads the manifest stored as blob d, whether or not it
// is linked in r.
func (r *Repository) readManifestData(d digest.Digest) (*Manifest, error) {
	p := r.s.layout.BlobData(d)
	raw, err := fs.ReadFile(r.s.fsys, p)
	if err != nil {
		return nil, r.err("get manifest", d.String(), p, err)
	}
	return r.parseManifestData(d, p, raw)
}

// young reports whether the file p was modified after cutoff.
func (s *Store) young(p string, cutoff time.Time) bool {
	if cutoff.After(time.Now().Add(time.Hour * 24 * 365)) {
		return false // no grace window: nothing to stat
	}
	fi, err := fs.Stat(s.fsys, p)
	return err == nil && fi.ModTime().After(cutoff)
}

// mark marks manifest d and what it references, recursing into child
// manifests present in the same repository. A referrer does not keep its
// subject.
func (rm *repoMarks) mark(d digest.Digest) error {
	rm.marked[d] = true
	m, ok := rm.cache[d]
	if !ok {
		var err error
		if m, err = rm.repo.Manifest(d); err != nil {
			return err
		}
	}
	subj, hasSubject := m.Subject()
	for ref := range m.References() {
		if hasSubject && ref.Digest == subj.Digest || rm.marked[ref.Digest] {
			continue
		}
		rm.marked[rm.intern(ref.Digest)] = true
		if rm.manifests[ref.Digest] {
			if err := rm.mark(ref.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// keepReferrers marks the untagged candidates of rm whose subject is kept
// (or, unless dropped, missing), until nothing changes.
func (s *Store) keepReferrers(rm *repoMarks, marked map[digest.Digest]bool, opts GCOptions) error {
	for changed := true; changed; {
		changed = false
		for _, d := range rm.candidates {
			subj, ok := rm.subjects[d]
			if !ok || marked[d] {
				continue
			}
			orphan := !rm.manifests[subj]
			if marked[subj] || (orphan && !opts.DropOrphanReferrers) {
				before := len(rm.marked)
				if err := rm.mark(d); err != nil {
					return err
				}
				maps.Copy(marked, rm.marked)
				changed = changed || len(rm.marked) != before
			}
		}
	}
	return nil
}

// ApplyGC removes what plan lists, pointers before data: tag index entries
// and revisions, then _layers links, then blob data. Each removal is
// re-validated first and skipped when it no longer holds: a revision that a
// tag now points at, or anything modified after the plan's cutoff.
//
// Writes that happen during the collection are protected through their
// links: every link younger than the cutoff is read, and what it points at
// is kept, with everything the manifests it names reference, recursively.
// This is done before anything is removed and again after the blobs to
// remove have been moved aside (on backends that rename): blobs that a push
// finished meanwhile now needs are put back. One window remains, as in the
// registry: a manifest whose blobs were checked before they were moved
// aside and whose revision link is written after the second look.
//
// A journal (_gc/aside below the layout root) names the blobs being moved
// aside while they are; an ApplyGC interrupted there (a crash, a kill) is
// finished by the next ApplyGC, which first puts every such blob's data
// back. [Store.Check] reports what is left until then as gc-interrupted.
func (s *Store) ApplyGC(ctx context.Context, plan *GCPlan, opts GCOptions) error {
	opts.defaults()
	w, err := s.writer("gc", "", "")
	if err != nil {
		return err
	}
	removed := 0
	var mu sync.Mutex
	progress := func() {
		mu.Lock()
		defer mu.Unlock()
		removed++
		if opts.Progress != nil {
			opts.Progress(GCProgress{Phase: "sweep", Removed: removed})
		}
	}
	if err := s.recoverGC(w); err != nil {
		return err
	}
	protected, err := s.youngReferences(plan.Cutoff)
	if err != nil {
		return err
	}
	for _, repo := range slices.Sorted(maps.Keys(plan.Manifests)) {
		r, err := s.Repository(repo)
		if err != nil {
			return err
		}
		if err := s.removeRevisions(ctx, w, r, plan.Manifests[repo], plan.Cutoff, protected, progress); err != nil {
			return err
		}
	}
	for _, repo := range slices.Sorted(maps.Keys(plan.LayerLinks)) {
		r, err := s.Repository(repo)
		if err != nil {
			return err
		}
		for _, d := range plan.LayerLinks[repo] {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := s.layout.LayerLink(r.name, d)
			if protected[d] || s.young(p, plan.Cutoff) {
				continue
			}
			if target, err := readLink(s.fsys, p); err == nil && protected[target] {
				continue
			}
			if err := removeFile(w, p); err != nil {
				return r.err("gc", d.String(), p, err)
			}
			progress()
		}
	}
	var doomed []digest.Digest
	for _, d := range plan.Blobs {
		if !protected[d] && !s.young(s.layout.BlobData(d), plan.Cutoff) {
			doomed = append(doomed, d)
		}
	}
	if _, ok := w.(RenameFS); !ok || plan.Cutoff.After(plan.Started) {
		// No cheap rename (an object store), or no grace window: look
		// once more, then remove.
		if protected, err = s.youngReferences(plan.Cutoff); err != nil {
			return err
		}
		return parallel(ctx, opts.Workers, len(doomed), func(i int) error {
			if protected[doomed[i]] {
				return nil
			}
			return s.removeBlob(w, doomed[i], progress)
		}, nil)
	}
	// Move the data aside, so that the registry and regstore see the blob
	// as missing (a push uploads it again), look again, put back what is
	// now referenced and remove the rest. A journal naming the blobs goes
	// first, so that a crash in between leaves nothing that the next
	// ApplyGC does not put back.
	if len(doomed) == 0 {
		return nil
	}
	journal := path.Join(s.layout.Root(), gcJournal)
	var list strings.Builder
	for _, d := range doomed {
		list.WriteString(d.String() + "\n")
	}
	if err := copyToFile(w, journal, strings.NewReader(list.String())); err != nil {
		return &Error{Op: "gc", Path: journal, Err: err}
	}
	aside := make([]bool, len(doomed))
	err = parallel(ctx, opts.Workers, len(doomed), func(i int) error {
		d := doomed[i]
		err := rename(w, s.layout.BlobData(d), s.layout.BlobData(d)+asideSuffix)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return &Error{Op: "gc", Reference: d.String(), Path: s.layout.BlobData(d), Err: err}
		}
		aside[i] = true
		return nil
	}, nil)
	if err == nil {
		protected, err = s.youngReferences(plan.Cutoff)
	}
	if err != nil {
		// Put back everything moved aside: nothing is lost.
		for i, d := range doomed {
			if aside[i] {
				err = errors.Join(err, s.restoreBlob(w, d))
			}
		}
		if err == nil {
			err = removeFile(w, journal)
		}
		return err
	}
	err = parallel(context.WithoutCancel(ctx), opts.Workers, len(doomed), func(i int) error {
		d := doomed[i]
		switch {
		case !aside[i]:
			return nil
		case protected[d]:
			return s.restoreBlob(w, d)
		default:
			return s.removeBlob(w, d, progress)
		}
	}, nil)
	if err != nil {
		return err
	}
	return removeFile(w, journal)
}

// gcJournal, below the layout root, lists the blobs whose data ApplyGC is
// moving aside while it does.
const gcJournal = "_gc/aside"

// recoverGC finishes what an interrupted ApplyGC left: every blob its
// journal names gets its data back if the data is missing, and loses the
// copy aside otherwise. The next collection judges those blobs again.
func (s *Store) recoverGC(w WriteFS) error {
	journal := path.Join(s.layout.Root(), gcJournal)
	raw, err := fs.ReadFile(s.fsys, journal)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &Error{Op: "gc", Path: journal, Err: err}
	}
	for line := range strings.Lines(string(raw)) {
		d := digest.Digest(strings.TrimSpace(line))
		if ValidateDigest(d) != nil {
			continue
		}
		if _, err := fs.Stat(s.fsys, s.layout.BlobData(d)+asideSuffix); err != nil {
			continue
		}
		if err := s.restoreBlob(w, d); err != nil {
			return err
		}
	}
	if err := removeFile(w, journal); err != nil {
		return &Error{Op: "gc", Path: journal, Err: err}
	}
	return nil
}

// asideSuffix names blob data that a collection moved aside.
const asideSuffix = ".gc"

// restoreBlob puts data moved aside back, unless the blob was uploaded
// again meanwhile.
func (s *Store) restoreBlob(w WriteFS, d digest.Digest) error {
	p := s.layout.BlobData(d)
	if _, err := fs.Stat(s.fsys, p); err == nil {
		return removeFile(w, p+asideSuffix)
	}
	if err := rename(w, p+asideSuffix, p); err != nil {
		return &Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
	}
	return nil
}

// removeBlob removes blob d's data (or what was moved aside) and then its
// directory, unless the blob was uploaded again meanwhile.
func (s *Store) removeBlob(w WriteFS, d digest.Digest, progress func()) error {
	dir := s.layout.BlobDir(d)
	p := s.layout.BlobData(d)
	if _, err := fs.Stat(s.fsys, p+asideSuffix); err == nil {
		if err := removeFile(w, p+asideSuffix); err != nil {
			return &Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
		}
	} else if err := removeFile(w, p); err != nil {
		return &Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
	}
	if _, err := fs.Stat(s.fsys, p); err == nil {
		return nil // uploaded again
	}
	if err := removeAll(w, dir); err != nil {
		return &Error{Op: "gc", Reference: d.String(), Path: dir, Err: err}
	}
	progress()
	return nil
}

// removeRevisions removes untagged revisions of r, each after its tag index
// entries, unless a tag now points at it, it is young, or a young link
// references it.
func (s *Store) removeRevisions(ctx context.Context, w WriteFS, r *Repository, ds []digest.Digest, cutoff time.Time, protected map[digest.Digest]bool, progress func()) error {
	var tags []*Tag
	current := map[digest.Digest]bool{}
	for t, err := range r.Tags() {
		if err != nil {
			return err
		}
		tags = append(tags, t)
		if d, err := t.Digest(); err == nil {
			current[d] = true
		}
	}
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return err
		}
		link := s.layout.RevisionLink(r.name, d)
		if current[d] || protected[d] || s.young(link, cutoff) {
			continue
		}
		for _, t := range tags {
			if err := removeAll(w, s.layout.TagIndexEntry(r.name, t.name, d)); err != nil {
				return r.err("gc", d.String(), s.layout.TagIndexEntry(r.name, t.name, d), err)
			}
		}
		if err := removeAll(w, s.layout.RevisionDir(r.name, d)); err != nil {
			return r.err("gc", d.String(), s.layout.RevisionDir(r.name, d), err)
		}
		progress()
	}
	return nil
}

// youngReferences returns what links modified after cutoff protect: their
// targets and, for manifests, everything they reference, recursively
// through index children. With no grace window it is empty.
func (s *Store) youngReferences(cutoff time.Time) (map[digest.Digest]bool, error) {
	protected := map[digest.Digest]bool{}
	if cutoff.After(time.Now().Add(time.Hour * 24 * 365)) {
		return protected, nil
	}
	var protect func(r *Repository, d digest.Digest, manifest bool)
	protect = func(r *Repository, d digest.Digest, manifest bool) {
		if protected[d] {
			return
		}
		protected[d] = true
		if !manifest {
			return
		}
		m, err := r.readManifestData(d)
		if err != nil {
			return
		}
		subj, _ := m.Subject()
		for ref := range m.References() {
			protect(r, ref.Digest, m.IsIndex() || ref.Digest == subj.Digest)
		}
	}
	for e, err := range s.Walk() {
		if err != nil {
			return nil, err
		}
		if !e.Info.ModTime().After(cutoff) {
			continue
		}
		switch e.Kind {
		case LayerLink, TagCurrentLink, TagIndexLink, RevisionLink:
			d, err := readLink(s.fsys, e.Path)
			if err != nil {
				continue
			}
			r, err := s.Repository(e.Repository)
			if err != nil {
				continue
			}
			protect(r, d, e.Kind != LayerLink)
		}
	}
	return protected, nil
}

// parallel runs fn(0..n-1) on at most workers goroutines, stopping at the
// first error or when ctx is done; done, if set, is called after each item
// from one goroutine at a time.
func parallel(ctx context.Context, workers, n int, fn func(i int) error, done func(int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					cancel(err)
					continue
				}
				if done != nil {
					mu.Lock()
					count++
					done(count)
					mu.Unlock()
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
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil && context.Cause(ctx) != nil {
		return fmt.Errorf("gc: %w", context.Cause(ctx))
	}
	return nil
}

// blobDirs lists the blob directories blobs/<alg>/<hex2>/<hex> without
// looking inside. On a WalkFS backend, whose flat listing has them for free,
// it lists the data files and returns their FileInfo too.
func (s *Store) blobDirs() (map[digest.Digest]digest.Digest, map[digest.Digest]fs.FileInfo, error) {
	out := map[digest.Digest]digest.Digest{}
	root := s.layout.Blobs()
	if _, ok := s.fsys.(WalkFS); ok {
		infos := map[digest.Digest]fs.FileInfo{}
		for b, err := range s.blobFiles() {
			if err != nil {
				return nil, nil, err
			}
			out[b.d] = b.d
			infos[b.d] = b.info
		}
		return out, infos, nil
	}
	err := walkDepth(s.fsys, root, 3, func(rel string) error {
		if d, ok := BlobDigest(rel + "/data"); ok {
			out[d] = d
		}
		return nil
	})
	if err != nil {
		return nil, nil, &Error{Op: "list blobs", Path: root, Err: err}
	}
	return out, nil, nil
}

package gc

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/walkdepth"
	"github.com/regstore/regstore/internal/workers"
)

// DefaultGrace is the grace window of garbage collection when
// [Options].Grace is zero: nothing written less than an hour before the
// collection started is removed.
const DefaultGrace = time.Hour

// Options configures [Mark] and [Sweep].
type Options struct {
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
	Progress func(Progress)
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
}

// Progress reports how far a collection has come.
type Progress struct {
	Phase        string // "mark", "sweep"
	Repositories int    // repositories marked so far
	// TotalRepositories is the number of repositories to mark.
	TotalRepositories int
	Removed           int // files or directories removed so far
	// ToRemove is what the plan names (revisions, layer links, blobs): an
	// upper bound of Removed, since Sweep skips what became young or
	// needed meanwhile.
	ToRemove int
}

// Plan is what a collection would remove. It is a plain value: it
// serialises to JSON, and [Sweep] re-validates every item against
// the tree before removing it.
type Plan struct {
	Started time.Time `json:"started"`
	// Cutoff is Started less the grace window: nothing modified after it
	// is removed. With the window off it lies after Started (see
	// [Plan.GraceOff]), and its JSON is null.
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
	// Unnamed lists the directories holding _manifests whose name is not
	// a valid repository name ([regstore.ValidateName]): the registry's
	// catalog lists them and its own collector aborts on them. Everything
	// they reference is kept and nothing in them is removed; check reports
	// them as name-invalid.
	Unnamed []string `json:"unnamed,omitempty"`
}

func (o *Options) defaults() {
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
	name       string
	repo       *regstore.Repository // nil when name is not a valid name
	store      *regstore.Store
	intern     func(digest.Digest) digest.Digest
	marked     map[digest.Digest]bool // manifests and blobs kept from this repository
	candidates []digest.Digest        // untagged manifests not (yet) kept
	subjects   map[digest.Digest]digest.Digest
	manifests  map[digest.Digest]bool               // revisions present
	cache      map[digest.Digest]*regstore.Manifest // while marking only
	links      []linkInfo                           // _layers links
}

type linkInfo struct {
	path   digest.Digest // digest in the link's path
	target digest.Digest
	young  bool
}

// Mark marks what is in use and returns what a sweep would remove,
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
func Mark(ctx context.Context, store *regstore.Store, opts Options) (*Plan, error) {
	s := newCollector(store)
	opts.defaults()
	plan := &Plan{Started: opts.Now(), Blobs: []digest.Digest{}, LayerLinks: map[string][]digest.Digest{}, Manifests: map[string][]digest.Digest{}}
	plan.Cutoff = plan.Started.Add(-opts.Grace)
	if opts.Grace < 0 {
		plan.Cutoff = graceOffCutoff(plan.Started)
	}

	// The repositories and, at the same time, one listing of the blob
	// directories: it answers "does the target exist" for every link,
	// instead of a stat per link. Only the blobs left unmarked are
	// stat'ed, in the sweep.
	var (
		repos   []string
		files   map[string]*repoFiles
		err     error
		blobs   map[digest.Digest]digest.Digest
		listed  map[digest.Digest]fs.FileInfo
		blobErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() { blobs, listed, blobErr = s.blobDirs() })
	if _, flat := s.fsys.(regstore.WalkFS); flat {
		repos, files, err = s.listRepositories()
	} else {
		repos, err = collectRepos(s.Store)
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
	for _, name := range repos {
		if regstore.ValidateName(name) != nil {
			plan.Unnamed = append(plan.Unnamed, name)
		}
	}
	results := make([]*repoMarks, len(repos))
	err = workers.Run(ctx, opts.Workers, len(repos), func(i int) error {
		rm, err := s.markRepository(repos[i], files[repos[i]], plan.Cutoff, opts, exists, intern)
		results[i] = rm
		return err
	}, func(done int) {
		if opts.Progress != nil {
			opts.Progress(Progress{Phase: "mark", Repositories: done, TotalRepositories: len(repos)})
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
				plan.Manifests[rm.name] = append(plan.Manifests[rm.name], d)
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
				plan.LayerLinks[rm.name] = append(plan.LayerLinks[rm.name], l.path)
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
	err = workers.Run(ctx, opts.Workers, len(unmarked), func(i int) error {
		d := unmarked[i]
		fi, ok := listed[d]
		var err error
		if !ok {
			fi, err = fs.Stat(s.fsys, s.layout.BlobData(d))
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Data an interrupted collection moved aside, which Sweep
			// puts back first; or an empty blob directory.
			fi, err = fs.Stat(s.fsys, s.layout.BlobDataAside(d))
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

// collectRepos lists every directory holding _manifests, whatever its
// name: one the registry serves must be marked through even when regstore
// cannot name it.
func collectRepos(s *regstore.Store) ([]string, error) {
	var repos []string
	for name, err := range s.RepositoryNames() {
		if err != nil {
			return nil, err
		}
		repos = append(repos, name)
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
// flat listing of a WalkFS backend. It returns the names of the
// repositories (every prefix holding _manifests, whatever its name) in
// catalog order.
func (s *collector) listRepositories() ([]string, map[string]*repoFiles, error) {
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
	err := regstore.WalkFiles(s.fsys, root, func(p string, fi fs.FileInfo) error {
		e := s.layout.Classify(p, false)
		if e.Repository != "" && strings.HasPrefix(p[len(s.layout.Repository(e.Repository)):], "/_manifests/") {
			hasManifests[e.Repository] = true
		}
		if e.Repository == "" || (e.Digest == "" && e.Kind != regstore.TagCurrentLink) {
			return nil
		}
		l := linkFile{path: p, d: e.Digest, info: fi}
		switch e.Kind {
		case regstore.TagCurrentLink:
			get(e.Repository).current[e.Tag] = l
		case regstore.TagIndexLink:
			f := get(e.Repository)
			f.index[e.Tag] = append(f.index[e.Tag], e.Digest)
		case regstore.RevisionLink:
			f := get(e.Repository)
			f.revisions = append(f.revisions, l)
		case regstore.LayerLink:
			f := get(e.Repository)
			f.layers = append(f.layers, l)
		}
		return nil
	})
	if err != nil {
		return nil, nil, &regstore.Error{Op: "list repositories", Path: root, Err: err}
	}
	names := slices.SortedFunc(maps.Keys(hasManifests), func(a, b string) int {
		return regstore.CompareNames(a, b)
	})
	return names, files, nil
}

// target reads link l, or takes its target from the listing when the
// backend reports the content's MD5 ([regstore.ContentMD5]) and it is that of one of
// the candidates: a link holds exactly its target's digest string.
func (s *collector) target(l linkFile, candidates ...digest.Digest) (digest.Digest, error) {
	if l.info != nil {
		if c, ok := l.info.Sys().(regstore.ContentMD5); ok {
			if sum, ok := c.ContentMD5(); ok {
				for _, d := range candidates {
					if d != "" && md5.Sum([]byte(d)) == sum {
						return d, nil
					}
				}
			}
		}
	}
	return regstore.ReadLink(s.fsys, l.path)
}

// isYoung reports whether link l was modified after cutoff, from its
// listing's FileInfo when there is one.
func (s *collector) isYoung(l linkFile, cutoff time.Time) bool {
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
//
// A repository whose name is not valid is marked whole (every manifest,
// tagged or not, and every _layers link's blob) and nothing of it is
// planned for removal. A revision link that names another digest than its
// path ends the mark with an error wrapping [regstore.ErrCorruptLink]:
// which of the two the registry serves is not for a collector to guess.
func (s *collector) markRepository(name string, files *repoFiles, cutoff time.Time, opts Options, exists func(digest.Digest) bool, intern func(digest.Digest) digest.Digest) (*repoMarks, error) {
	r, _ := s.Repository(name) // nil for a name regstore cannot name
	keepAll := r == nil
	rm := &repoMarks{name: name, repo: r, store: s.Store, intern: intern, marked: map[digest.Digest]bool{}, subjects: map[digest.Digest]digest.Digest{},
		manifests: map[digest.Digest]bool{}, cache: map[digest.Digest]*regstore.Manifest{}}
	defer func() { rm.cache = nil }()
	if files == nil {
		var err error
		if files, err = s.repoLinkFiles(name); err != nil {
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
			return nil, repoErr(name, "gc", tag, files.current[tag].path, err)
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
			return nil, repoErr(name, "gc", "", l.path, err)
		}
		if l.d != "" && target != l.d {
			return nil, repoErr(name, "gc", l.d.String(), l.path,
				fmt.Errorf("%w: revision link names %s, not the digest of its path", regstore.ErrCorruptLink, target))
		}
		m, err := s.Manifest(target)
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
		if opts.DeleteUntagged && !tagged[d] && !young[d] && !keepAll {
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
				return nil, repoErr(name, "gc", l.d.String(), l.path, err)
			}
		}
		if keepAll {
			rm.marked[intern(target)] = true
			continue
		}
		if !exists(target) {
			// Not listed: dangling (the registry skips it too), or data
			// written since the listing, which a stat finds.
			if _, err := s.Blob(target); err != nil {
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

// repoLinkFiles lists the links of repository name directory by
// directory, for backends without a flat listing. Link files are not
// opened (a missing one reads as fs.ErrNotExist later).
func (s *collector) repoLinkFiles(name string) (*repoFiles, error) {
	f := &repoFiles{current: map[string]linkFile{}, index: map[string][]digest.Digest{}}
	tags, err := s.tagDirs(name)
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		f.current[t] = linkFile{path: s.layout.TagCurrent(name, t)}
	}
	err = regstore.WalkLinks(s.fsys, s.layout.Revisions(name), func(p string, d digest.Digest) error {
		f.revisions = append(f.revisions, linkFile{path: p, d: d})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = regstore.WalkLinks(s.fsys, s.layout.Layers(name), func(p string, d digest.Digest) error {
		f.layers = append(f.layers, linkFile{path: p, d: d})
		return nil
	})
	return f, err
}

// tagDirs lists every directory below the tags directory of repository
// name, whatever its name: the registry's --delete-untagged counts a tag
// whose name is not a valid tag as long as its current link names the
// manifest, and so does a collection. A symbolic link there is an error
// wrapping [regstore.ErrSymlink].
func (s *collector) tagDirs(name string) ([]string, error) {
	dir := s.layout.Tags(name)
	entries, err := fs.ReadDir(s.fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &regstore.Error{Op: "gc", Repository: name, Path: dir, Err: err}
	}
	var tags []string
	for _, e := range entries {
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			p := s.layout.Tag(name, e.Name())
			return nil, &regstore.Error{Op: "gc", Repository: name, Path: p, Err: fmt.Errorf("%w: %s", regstore.ErrSymlink, p)}
		case e.IsDir():
			tags = append(tags, e.Name())
		}
	}
	return tags, nil
}

// young reports whether the file p was modified after cutoff.
func (s *collector) young(p string, cutoff time.Time) bool {
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
		// d has a revision link here (it is in rm.manifests): its data
		// is the manifest.
		var err error
		if m, err = rm.store.Manifest(d); err != nil {
			return repoErr(rm.name, "gc", d.String(), "", err)
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
func (s *collector) keepReferrers(rm *repoMarks, marked map[digest.Digest]bool, opts Options) error {
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

// Result is what [Sweep] did: what it removed, and what the plan listed
// that it kept, with why. It serialises to JSON.
type Result struct {
	// Blobs is the blob data removed, sorted.
	Blobs []digest.Digest `json:"blobs"`
	// LayerLinks are the _layers links removed, per repository.
	LayerLinks map[string][]digest.Digest `json:"layerLinks"`
	// Manifests are the revisions removed, per repository.
	Manifests map[string][]digest.Digest `json:"manifests"`
	// Bytes is the size of the blob data removed.
	Bytes int64 `json:"bytes"`
	// Skipped is what the plan listed and the sweep kept, because it no
	// longer held when re-validated.
	Skipped []Skipped `json:"skipped"`
	// Restored lists the blobs whose data an interrupted or concurrent
	// collection had moved aside and that this sweep put back.
	Restored []digest.Digest `json:"restored,omitempty"`
}

// Skipped is one item of a plan that [Sweep] kept.
type Skipped struct {
	// What is "blob", "layer link" or "manifest".
	What       string        `json:"what"`
	Repository string        `json:"repository,omitempty"`
	Digest     digest.Digest `json:"digest"`
	// Why is one of the Skip* reasons.
	Why string `json:"why"`
}

// The reasons of [Skipped].
const (
	SkipYoung      = "modified after the cutoff"          // written again since the plan
	SkipReferenced = "referenced by a link written since" // a push needs it
	SkipTagged     = "a tag points at it"                 // tagged since the plan
	SkipUploaded   = "uploaded again"                     // its data came back while it was removed
	SkipRestored   = "put back by another collection"     // a concurrent sweep restored it
)

// Sweep removes what plan lists, pointers before data: tag index entries
// and revisions, then _layers links, then blob data. Each removal is
// re-validated first and skipped when it no longer holds: a revision that a
// tag now points at, or anything modified after the plan's cutoff. The
// result lists what was removed and, apart, what was skipped and why.
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
// Each sweep has its own journal (_gc/aside-<run> below the layout root,
// [regstore.Layout.GCRunJournal]) naming the blobs it moves aside while it
// does, so concurrent collections never overwrite or remove each other's.
// A sweep first puts back the data every other run's journal names (an
// interrupted run's, after a crash or a kill; or a concurrent one's), and
// removes that journal: putting data back is always safe, a sweep that
// finds data it moved aside put back keeps it (reported as skipped), and
// one whose journal was removed while it moved data publishes it again
// before it removes anything. [check.Problems] reports what an interrupted
// sweep left until the next one as gc-interrupted.
func Sweep(ctx context.Context, store *regstore.Store, plan *Plan, opts Options) (*Result, error) {
	s := newCollector(store)
	opts.defaults()
	res := &Result{Blobs: []digest.Digest{}, LayerLinks: map[string][]digest.Digest{},
		Manifests: map[string][]digest.Digest{}, Skipped: []Skipped{}}
	w, err := writer(s.Store, "gc")
	if err != nil {
		return res, err
	}
	removed, toRemove := 0, len(plan.Blobs)
	for _, ds := range plan.Manifests {
		toRemove += len(ds)
	}
	for _, ds := range plan.LayerLinks {
		toRemove += len(ds)
	}
	var mu sync.Mutex
	progress := func() {
		removed++
		if opts.Progress != nil {
			opts.Progress(Progress{Phase: "sweep", Removed: removed, ToRemove: toRemove})
		}
	}
	skip := func(what, repo string, d digest.Digest, why string) {
		mu.Lock()
		defer mu.Unlock()
		res.Skipped = append(res.Skipped, Skipped{What: what, Repository: repo, Digest: d, Why: why})
	}
	removedBlob := func(d digest.Digest, size int64) {
		mu.Lock()
		defer mu.Unlock()
		res.Blobs = append(res.Blobs, d)
		res.Bytes += size
		progress()
	}
	defer func() { slices.Sort(res.Blobs) }()
	restored, err := s.recoverGC(w)
	res.Restored = restored
	if err != nil {
		return res, err
	}
	protected, err := s.youngReferences(plan.Cutoff)
	if err != nil {
		return res, err
	}
	for _, repo := range slices.Sorted(maps.Keys(plan.Manifests)) {
		r, err := s.Repository(repo)
		if err != nil {
			return res, err
		}
		if err := s.removeRevisions(ctx, w, r, plan.Manifests[repo], plan.Cutoff, protected, res, progress); err != nil {
			return res, err
		}
	}
	for _, repo := range slices.Sorted(maps.Keys(plan.LayerLinks)) {
		r, err := s.Repository(repo)
		if err != nil {
			return res, err
		}
		for _, d := range plan.LayerLinks[repo] {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			p := s.layout.LayerLink(r.Name(), d)
			if s.young(p, plan.Cutoff) {
				skip("layer link", repo, d, SkipYoung)
				continue
			}
			if protected[d] {
				skip("layer link", repo, d, SkipReferenced)
				continue
			}
			if target, err := regstore.ReadLink(s.fsys, p); err == nil && protected[target] {
				skip("layer link", repo, d, SkipReferenced)
				continue
			}
			if err := regstore.Remove(w, p); err != nil {
				return res, repoErr(repo, "gc", d.String(), p, err)
			}
			res.LayerLinks[repo] = append(res.LayerLinks[repo], d)
			progress()
		}
	}
	var doomed []digest.Digest
	for _, d := range plan.Blobs {
		switch {
		case protected[d]:
			skip("blob", "", d, SkipReferenced)
		case s.young(s.layout.BlobData(d), plan.Cutoff):
			skip("blob", "", d, SkipYoung)
		default:
			doomed = append(doomed, d)
		}
	}
	if _, ok := w.(regstore.RenameFS); !ok || plan.Cutoff.After(plan.Started) {
		// No cheap rename (an object store), or no grace window: look
		// once more, then remove.
		if protected, err = s.youngReferences(plan.Cutoff); err != nil {
			return res, err
		}
		err = workers.Run(ctx, opts.Workers, len(doomed), func(i int) error {
			if protected[doomed[i]] {
				skip("blob", "", doomed[i], SkipReferenced)
				return nil
			}
			return s.removeBlob(w, doomed[i], false, skip, removedBlob)
		}, nil)
		return res, err
	}
	// Move the data aside, so that the registry and regstore see the blob
	// as missing (a push uploads it again), look again, put back what is
	// now referenced and remove the rest. This run's journal naming the
	// blobs goes first, so that a crash in between leaves nothing that
	// the next Sweep does not put back.
	if len(doomed) == 0 {
		return res, nil
	}
	journal := s.layout.GCRunJournal(runID(plan.Started))
	var list strings.Builder
	for _, d := range doomed {
		list.WriteString(d.String() + "\n")
	}
	if err := regstore.WriteFile(w, journal, strings.NewReader(list.String())); err != nil {
		return res, &regstore.Error{Op: "gc", Path: journal, Err: err}
	}
	aside := make([]bool, len(doomed))
	err = workers.Run(ctx, opts.Workers, len(doomed), func(i int) error {
		d := doomed[i]
		err := regstore.Rename(w, s.layout.BlobData(d), s.layout.BlobDataAside(d))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return &regstore.Error{Op: "gc", Reference: d.String(), Path: s.layout.BlobData(d), Err: err}
		}
		aside[i] = true
		return nil
	}, nil)
	if err == nil {
		// A concurrent sweep that recovered this run's journal while the
		// data was being moved removed it: publish it again before the
		// second look, so that a crash from here on leaves it named.
		if _, serr := fs.Stat(s.fsys, journal); errors.Is(serr, fs.ErrNotExist) {
			err = regstore.WriteFile(w, journal, strings.NewReader(list.String()))
		}
	}
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
			err = regstore.Remove(w, journal)
		}
		return res, err
	}
	err = workers.Run(context.WithoutCancel(ctx), opts.Workers, len(doomed), func(i int) error {
		d := doomed[i]
		switch {
		case !aside[i]:
			return nil
		case protected[d]:
			skip("blob", "", d, SkipReferenced)
			return s.restoreBlob(w, d)
		default:
			return s.removeBlob(w, d, true, skip, removedBlob)
		}
	}, nil)
	if err != nil {
		return res, err
	}
	return res, regstore.Remove(w, journal)
}

// runID names one sweep's journal: its plan's start and a random part, so
// that concurrent collections never share one.
func runID(started time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", started.UTC().Format("20060102T150405Z"), b)
}

// recoverGC puts back the data that the journals of other runs name (and
// the legacy shared journal), so an interrupted collection loses nothing:
// every blob a journal names gets its data back if the data is missing,
// and loses the copy aside otherwise. The next collection judges those
// blobs again. Each journal is removed once done. It returns the blobs put
// back.
func (s *collector) recoverGC(w regstore.WriteFS) ([]digest.Digest, error) {
	dir := s.layout.GCDir()
	var journals []string
	err := regstore.WalkFiles(s.fsys, dir, func(p string, fi fs.FileInfo) error {
		if e := s.layout.Classify(p, false); e.Kind == regstore.GCLeftover && e.Digest == "" {
			journals = append(journals, p)
		}
		return nil
	})
	if err != nil {
		return nil, &regstore.Error{Op: "gc", Path: dir, Err: err}
	}
	var restored []digest.Digest
	for _, journal := range journals {
		raw, err := regstore.ReadFileMax(s.fsys, journal, maxJournal)
		if errors.Is(err, fs.ErrNotExist) {
			continue // finished meanwhile
		}
		if err != nil {
			return restored, &regstore.Error{Op: "gc", Path: journal, Err: err}
		}
		if len(raw) > maxJournal {
			return restored, &regstore.Error{Op: "gc", Path: journal, Err: fmt.Errorf("journal longer than %d bytes: %w", maxJournal, fs.ErrInvalid)}
		}
		for line := range strings.Lines(string(raw)) {
			d := digest.Digest(strings.TrimSpace(line))
			if regstore.ValidateDigest(d) != nil {
				continue
			}
			if _, err := fs.Stat(s.fsys, s.layout.BlobDataAside(d)); err != nil {
				continue
			}
			if _, err := fs.Stat(s.fsys, s.layout.BlobData(d)); errors.Is(err, fs.ErrNotExist) {
				restored = append(restored, d)
			}
			if err := s.restoreBlob(w, d); err != nil {
				return restored, err
			}
		}
		if err := regstore.Remove(w, journal); err != nil {
			return restored, &regstore.Error{Op: "gc", Path: journal, Err: err}
		}
	}
	return restored, nil
}

// maxJournal bounds a journal's size: one line per blob, 200 bytes each,
// for ten million blobs.
const maxJournal = 200 << 20

// restoreBlob puts data moved aside back, unless the blob was uploaded
// again meanwhile.
func (s *collector) restoreBlob(w regstore.WriteFS, d digest.Digest) error {
	p := s.layout.BlobData(d)
	if _, err := fs.Stat(s.fsys, p); err == nil {
		return regstore.Remove(w, s.layout.BlobDataAside(d))
	}
	if err := regstore.Rename(w, s.layout.BlobDataAside(d), p); err != nil {
		return &regstore.Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
	}
	return nil
}

// removeBlob removes blob d's data (moved aside first when wasAside) and
// then its directory, unless the blob was uploaded again or put back by
// another collection meanwhile; skip and removed record what happened.
func (s *collector) removeBlob(w regstore.WriteFS, d digest.Digest, wasAside bool, skip func(what, repo string, d digest.Digest, why string), removed func(digest.Digest, int64)) error {
	dir := s.layout.BlobDir(d)
	p := s.layout.BlobData(d)
	var size int64
	if fi, err := fs.Stat(s.fsys, s.layout.BlobDataAside(d)); err == nil {
		size = fi.Size()
		if err := regstore.Remove(w, s.layout.BlobDataAside(d)); err != nil {
			return &regstore.Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
		}
	} else if wasAside {
		// Moved aside by this sweep and no longer there: another
		// collection put it back, and its data stays.
		skip("blob", "", d, SkipRestored)
		return nil
	} else {
		if fi, err := fs.Stat(s.fsys, p); err == nil {
			size = fi.Size()
		}
		if err := regstore.Remove(w, p); err != nil {
			return &regstore.Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
		}
	}
	if _, err := fs.Stat(s.fsys, p); err == nil {
		skip("blob", "", d, SkipUploaded)
		return nil // uploaded again
	} else if !errors.Is(err, fs.ErrNotExist) {
		// Cannot tell whether it was uploaded again: leave the directory.
		return &regstore.Error{Op: "gc", Reference: d.String(), Path: p, Err: err}
	}
	// Only the now empty directory goes: whatever else is in it (a write
	// in progress, a file regstore cannot name) stays, and the registry
	// treats a blob directory without data as absent.
	_ = w.Remove(dir)
	removed(d, size)
	return nil
}

// removeRevisions removes untagged revisions of r, each after its tag index
// entries, unless a tag now points at it (whatever the tag directory's
// name), it is young, or a young link references it.
func (s *collector) removeRevisions(ctx context.Context, w regstore.WriteFS, r *regstore.Repository, ds []digest.Digest, cutoff time.Time, protected map[digest.Digest]bool, res *Result, progress func()) error {
	tags, err := s.tagDirs(r.Name())
	if err != nil {
		return err
	}
	current := map[digest.Digest]bool{}
	for _, t := range tags {
		p := s.layout.TagCurrent(r.Name(), t)
		d, err := regstore.ReadLink(s.fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return repoErr(r.Name(), "gc", t, p, err)
		}
		current[d] = true
	}
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return err
		}
		link := s.layout.RevisionLink(r.Name(), d)
		why := ""
		switch {
		case current[d]:
			why = SkipTagged
		case protected[d]:
			why = SkipReferenced
		case s.young(link, cutoff):
			why = SkipYoung
		}
		if why != "" {
			res.Skipped = append(res.Skipped, Skipped{What: "manifest", Repository: r.Name(), Digest: d, Why: why})
			continue
		}
		for _, t := range tags {
			if err := regstore.RemoveAll(w, s.layout.TagIndexEntry(r.Name(), t, d)); err != nil {
				return repoErr(r.Name(), "gc", d.String(), s.layout.TagIndexEntry(r.Name(), t, d), err)
			}
		}
		if err := regstore.RemoveAll(w, s.layout.RevisionDir(r.Name(), d)); err != nil {
			return repoErr(r.Name(), "gc", d.String(), s.layout.RevisionDir(r.Name(), d), err)
		}
		res.Manifests[r.Name()] = append(res.Manifests[r.Name()], d)
		progress()
	}
	return nil
}

// youngReferences returns what links modified after cutoff protect: their
// targets and, for manifests, everything they reference, recursively
// through index children. With no grace window it is empty.
func (s *collector) youngReferences(cutoff time.Time) (map[digest.Digest]bool, error) {
	protected := map[digest.Digest]bool{}
	if cutoff.After(time.Now().Add(time.Hour * 24 * 365)) {
		return protected, nil
	}
	// What a young link or manifest references cannot be known when it
	// cannot be read: the sweep stops rather than remove it.
	var protect func(d digest.Digest, manifest bool) error
	protect = func(d digest.Digest, manifest bool) error {
		if protected[d] {
			return nil
		}
		protected[d] = true
		if !manifest {
			return nil
		}
		m, err := s.Manifest(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no data (yet): it references nothing stored
		}
		if err != nil {
			return fmt.Errorf("a young manifest cannot be read, so what it references is unknown: %w", err)
		}
		subj, _ := m.Subject()
		for ref := range m.References() {
			if err := protect(ref.Digest, m.IsIndex() || ref.Digest == subj.Digest); err != nil {
				return err
			}
		}
		return nil
	}
	for e, err := range s.Walk() {
		if err != nil {
			return nil, err
		}
		if !e.Info.ModTime().After(cutoff) {
			continue
		}
		switch e.Kind {
		case regstore.LayerLink, regstore.TagCurrentLink, regstore.TagIndexLink, regstore.RevisionLink:
			d, err := regstore.ReadLink(s.fsys, e.Path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was listed
			}
			if err == nil {
				err = protect(d, e.Kind != regstore.LayerLink)
			}
			if err != nil {
				return nil, &regstore.Error{Op: "gc", Path: e.Path, Err: err}
			}
		}
	}
	return protected, nil
}

// blobDirs lists the blob directories blobs/<alg>/<hex2>/<hex> without
// looking inside. On a WalkFS backend, whose flat listing has them for free,
// it lists the data files and returns their FileInfo too.
func (s *collector) blobDirs() (map[digest.Digest]digest.Digest, map[digest.Digest]fs.FileInfo, error) {
	out := map[digest.Digest]digest.Digest{}
	root := s.layout.Blobs()
	if _, ok := s.fsys.(regstore.WalkFS); ok {
		infos := map[digest.Digest]fs.FileInfo{}
		for b, err := range s.BlobFiles() {
			if err != nil {
				return nil, nil, err
			}
			out[b.Digest] = b.Digest
			infos[b.Digest] = b.Info
		}
		return out, infos, nil
	}
	err := walkdepth.Walk(s.fsys, root, 3, func(rel string) error {
		if d, ok := regstore.BlobDigest(rel + "/data"); ok {
			out[d] = d
		}
		return nil
	})
	if err != nil {
		return nil, nil, &regstore.Error{Op: "list blobs", Path: root, Err: err}
	}
	return out, nil, nil
}

// collector is a store seen by a collection: its backend and layout at
// hand.
type collector struct {
	*regstore.Store
	fsys   fs.FS
	layout regstore.Layout
}

func newCollector(s *regstore.Store) *collector {
	return &collector{Store: s, fsys: s.FS(), layout: s.Layout()}
}

func repoErr(repo, op, ref, path string, err error) error {
	return &regstore.Error{Op: op, Repository: repo, Reference: ref, Path: path, Err: err}
}

// writer is the store's write side; its error names op.
func writer(s *regstore.Store, op string) (regstore.WriteFS, error) {
	w, err := s.Writer()
	if e := (*regstore.Error)(nil); errors.As(err, &e) {
		e.Op = op
	}
	return w, err
}

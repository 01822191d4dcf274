package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/internal/workers"
)

// ProblemKind names a kind of damage the integrity check finds. The names
// are stable: scripts may match them.
type ProblemKind string

// The kinds of [Problem].
const (
	BlobCorrupt       ProblemKind = "blob-corrupt"        // data does not hash to its digest
	BlobMissing       ProblemKind = "blob-missing"        // a link names data that does not exist
	BlobOrphan        ProblemKind = "blob-orphan"         // data nothing links to or references
	LinkEmpty         ProblemKind = "link-empty"          // a link file with no content
	LinkTrailingBytes ProblemKind = "link-trailing-bytes" // a digest followed by a newline or other bytes
	LinkUnknownAlg    ProblemKind = "link-unknown-algorithm"
	LinkUnparsable    ProblemKind = "link-unparsable"     // anything else that is not "<alg>:<hex>"
	TagNotInIndex     ProblemKind = "tag-not-in-index"    // current link not recorded in the tag's index
	TagUnresolvable   ProblemKind = "tag-unresolvable"    // current link names a manifest not in the repository
	ManifestInvalid   ProblemKind = "manifest-invalid"    // does not parse as any manifest the registry reads
	ManifestTooLarge  ProblemKind = "manifest-too-large"  // over 4 MiB
	ReferenceMissing  ProblemKind = "reference-missing"   // a blob or child manifest that is not in the store
	ReferenceUnlinked ProblemKind = "reference-unlinked"  // a blob or child that exists but is not linked in the repository
	UploadStale       ProblemKind = "upload-stale"        // an upload older than the stale age
	UploadMalformed   ProblemKind = "upload-malformed"    // an upload whose startedat is missing or unreadable
	TempFileLeft      ProblemKind = "temp-file"           // a *.tmp left by an interrupted write
	GCInterrupted     ProblemKind = "gc-interrupted"      // blob data an interrupted gc.Sweep moved aside, or its journal
	UnknownFileInTree ProblemKind = "unknown-file"        // a file that is no part of the layout
	NameInvalid       ProblemKind = "name-invalid"        // a repository directory whose name is not a valid repository name
	SymlinkInTree     ProblemKind = "symlink-in-tree"     // a symbolic link inside the layout (mutations refuse to follow it)
	LinkMismatch      ProblemKind = "link-mismatch"       // a well-formed link naming another digest than its path
	LinkIsDirectory   ProblemKind = "link-is-directory"   // a directory where a link file belongs
	TagWithoutCurrent ProblemKind = "tag-without-current" // a tag directory with no current/link
	TagInvalid        ProblemKind = "tag-invalid"         // a tag directory whose name is not a valid tag
	BlobUnreadable    ProblemKind = "blob-unreadable"     // blob data that cannot be read (permissions, I/O, a symlink leaving the root)
)

// Problem is one finding of [Problems].
type Problem struct {
	Kind       ProblemKind   `json:"kind"`
	Path       string        `json:"path"`
	Repository string        `json:"repository,omitempty"`
	Tag        string        `json:"tag,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	// Target is what a link names, when it matters (e.g. the missing blob).
	Target  digest.Digest `json:"target,omitempty"`
	Message string        `json:"message"`
}

// String is the problem's sentence.
func (p Problem) String() string { return p.Message }

// Options configures [Problems].
type Options struct {
	// LinksOnly skips re-hashing blob data: a fast pass over the
	// structure only.
	LinksOnly bool
	// Workers bounds the blobs re-hashed at once. Zero means 4.
	Workers int
	// StaleUploads is the age beyond which an upload session counts as
	// stale. Zero means 168h, the registry's purge age.
	StaleUploads time.Duration
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
	// Progress, if set, is called with the counts so far: after each file
	// walked, each problem found and each blob re-hashed, from one
	// goroutine at a time. It is called often: keep it cheap (store the
	// value; show it on a timer).
	Progress func(Progress)
}

// Progress is what [Problems] has done so far.
type Progress struct {
	// Phase is "walk" (links, tags, manifests, uploads) or "rehash" (blob
	// data, unless LinksOnly).
	Phase string
	// Files is the number of files walked.
	Files int
	// Problems is the number of problems found.
	Problems int
	// Blobs and Bytes are the blobs (and their bytes) re-hashed so far, of
	// TotalBlobs and TotalBytes, which are known when the phase starts.
	Blobs, TotalBlobs int
	Bytes, TotalBytes int64
}

// checkState is what the walk has seen so far.
type checkState struct {
	blobs      map[digest.Digest]int64                    // data present, with sizes
	referenced map[digest.Digest]bool                     // named by any link or reference
	layers     map[string]map[digest.Digest]digest.Digest // repo → link digest → target
	revisions  map[string]map[digest.Digest]digest.Digest
	tagCurrent map[string]map[string]Problem // repo → tag → current link (Digest = target)
	tagIndex   map[string]map[string]map[digest.Digest]bool
	repos      map[string]bool        // every repository name met in the walk
	journaled  map[digest.Digest]bool // blobs a gc journal names
}

// Check walks the whole store and yields every problem it finds, as it
// finds them: structure first (links, tags, manifests, uploads, unknown
// files), then, unless LinksOnly, blob data re-hashed on a bounded number of
// workers. It changes nothing. Empty directories (which the registry itself
// leaves after deletes) and legacy signature links are not problems.
// The sequence ends early, with an error, only when the backend fails.
func Problems(ctx context.Context, store *regstore.Store, opts Options) iter.Seq2[Problem, error] {
	s := newChecker(store)
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.StaleUploads <= 0 {
		opts.StaleUploads = 168 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return func(yield func(Problem, error) bool) {
		pr := &progressState{fn: opts.Progress, p: Progress{Phase: "walk"}}
		yield = pr.counting(yield)
		st := &checkState{blobs: map[digest.Digest]int64{}, referenced: map[digest.Digest]bool{},
			layers: map[string]map[digest.Digest]digest.Digest{}, revisions: map[string]map[digest.Digest]digest.Digest{},
			tagCurrent: map[string]map[string]Problem{}, tagIndex: map[string]map[string]map[digest.Digest]bool{},
			repos: map[string]bool{}, journaled: map[digest.Digest]bool{}}
		for e, err := range s.Walk() {
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(Problem{}, err)
				return
			}
			pr.update(func(p *Progress) { p.Files++ })
			for _, p := range s.checkEntry(st, e, opts) {
				if !yield(p, nil) {
					return
				}
			}
		}
		for _, p := range s.checkRepositories(st) {
			if !yield(p, nil) {
				return
			}
		}
		ps, err := s.checkNames(st)
		for _, p := range ps {
			if !yield(p, nil) {
				return
			}
		}
		if err != nil {
			yield(Problem{}, err)
			return
		}
		for _, d := range sortedDigests(st.blobs) {
			if !st.referenced[d] {
				p := Problem{Kind: BlobOrphan, Path: s.layout.BlobData(d), Digest: d,
					Message: fmt.Sprintf("blob %s (%d bytes) is neither linked in any repository nor referenced by any manifest; garbage collection will remove it", d, st.blobs[d])}
				if !yield(p, nil) {
					return
				}
			}
		}
		if !opts.LinksOnly {
			s.rehash(ctx, st, opts.Workers, pr, yield)
		}
	}
}

// checkEntry looks at one walked file.
func (s *checker) checkEntry(st *checkState, e regstore.Entry, opts Options) []Problem {
	var out []Problem
	if e.Repository != "" {
		st.repos[e.Repository] = true
	}
	if e.Info != nil && e.Info.Mode()&fs.ModeSymlink != 0 {
		// Reported, and then judged as what it stands for (the registry
		// follows it): a link is read through it, data re-hashed.
		out = append(out, Problem{Kind: SymlinkInTree, Path: e.Path, Repository: e.Repository, Tag: e.Tag, Digest: e.Digest,
			Message: fmt.Sprintf("%s is a symbolic link: the registry follows it, regstore's rm, gc and repair refuse to", e.Path)})
		if e.Kind == regstore.UnknownFile {
			return out // a directory the registry enters through the link
		}
	}
	if e.Info != nil && e.Info.IsDir() && e.Kind != regstore.UploadDir {
		return append(out, Problem{Kind: LinkIsDirectory, Path: e.Path, Repository: e.Repository, Tag: e.Tag, Digest: e.Digest,
			Message: fmt.Sprintf("%s is a directory where a %s belongs: the registry fails on it, and gc refuses to run", e.Path, e.Kind)})
	}
	return append(out, s.checkFile(st, e, opts)...)
}

// checkFile looks at one walked file, by kind.
func (s *checker) checkFile(st *checkState, e regstore.Entry, opts Options) []Problem {
	switch e.Kind {
	case regstore.BlobData:
		st.blobs[e.Digest] = e.Info.Size()
	case regstore.LayerLink, regstore.RevisionLink, regstore.TagCurrentLink, regstore.TagIndexLink:
		target, p, ok := s.checkLink(e)
		if !ok {
			return []Problem{p}
		}
		st.referenced[target] = true
		if e.Digest != "" && target != e.Digest && (e.Kind != regstore.LayerLink || target.Algorithm() == e.Digest.Algorithm()) {
			// Not an alias link (a _layers link of another algorithm
			// naming the canonical digest): the link contradicts its path.
			st.referenced[e.Digest] = true
			p.Kind, p.Target = LinkMismatch, target
			p.Message = fmt.Sprintf("%s %s in %s names %s, not the digest of its path; gc refuses to run until it is fixed", e.Kind, e.Digest, e.Repository, target)
			return []Problem{p}
		}
		switch e.Kind {
		case regstore.LayerLink:
			setIn(st.layers, e.Repository)[e.Digest] = target
		case regstore.RevisionLink:
			setIn(st.revisions, e.Repository)[e.Digest] = target
		case regstore.TagCurrentLink:
			setIn(st.tagCurrent, e.Repository)[e.Tag] = Problem{Path: e.Path, Repository: e.Repository, Tag: e.Tag, Target: target}
			return nil
		case regstore.TagIndexLink:
			tags := setIn(st.tagIndex, e.Repository)
			if tags[e.Tag] == nil {
				tags[e.Tag] = map[digest.Digest]bool{}
			}
			tags[e.Tag][target] = true
			return nil
		}
		if _, ok := st.blobs[target]; !ok {
			return []Problem{{Kind: BlobMissing, Path: e.Path, Repository: e.Repository, Digest: e.Digest, Target: target,
				Message: fmt.Sprintf("%s %s in %s names blob %s, whose data is missing (the registry answers \"unknown\")", e.Kind, e.Digest, e.Repository, target)}}
		}
	case regstore.UploadDir:
		return s.checkUpload(e, opts)
	case regstore.TempFile:
		return []Problem{{Kind: TempFileLeft, Path: e.Path, Repository: e.Repository,
			Message: fmt.Sprintf("temporary file %s was left by an interrupted write, or belongs to one in progress; Repair (remove-temp-files) removes it once it is an hour old", e.Path)}}
	case regstore.GCLeftover:
		msg := fmt.Sprintf("%s was left by an interrupted garbage collection; the next gc.Sweep (regstore gc) puts the data it names back", e.Path)
		if e.Digest == "" {
			// A journal; journals sort before blobs/, so their names are
			// known when the data moved aside is met.
			if raw, err := regstore.ReadFileMax(s.fsys, e.Path, 200<<20); err == nil {
				for line := range strings.Lines(string(raw)) {
					st.journaled[digest.Digest(strings.TrimSpace(line))] = true
				}
			}
		} else {
			switch {
			case st.journaled[e.Digest]:
				msg = fmt.Sprintf("%s is data an interrupted garbage collection moved aside; the next gc.Sweep (regstore gc) puts it back (a journal names it)", e.Path)
			default:
				msg = fmt.Sprintf("%s is data a garbage collection moved aside and no journal names; gc keeps it but does not put it back: check --repair restore-gc-data does", e.Path)
			}
		}
		return []Problem{{Kind: GCInterrupted, Path: e.Path, Digest: e.Digest, Message: msg}}
	case regstore.UnknownFile:
		return []Problem{{Kind: UnknownFileInTree, Path: e.Path, Repository: e.Repository,
			Message: fmt.Sprintf("%s is not part of the registry layout", e.Path)}}
	}
	return nil
}

// setIn returns m[repo], creating it.
func setIn[K comparable, V any](m map[string]map[K]V, repo string) map[K]V {
	if m[repo] == nil {
		m[repo] = map[K]V{}
	}
	return m[repo]
}

func sortedDigests[V any](m map[digest.Digest]V) []digest.Digest {
	return slices.Sorted(maps.Keys(m))
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// checkLink reads a link file and classifies what is wrong with it.
func (s *checker) checkLink(e regstore.Entry) (digest.Digest, Problem, bool) {
	p := Problem{Path: e.Path, Repository: e.Repository, Tag: e.Tag, Digest: e.Digest}
	f, err := s.fsys.Open(e.Path)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(f, regstore.MaxLinkSize+1))
		f.Close()
	}
	if err != nil {
		p.Kind, p.Message = LinkUnparsable, fmt.Sprintf("%s %s cannot be read: %v", e.Kind, e.Path, err)
		return "", p, false
	}
	d, err := regstore.ParseLink(b)
	if err == nil {
		return d, p, true
	}
	trimmed := bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		p.Kind, p.Message = LinkEmpty, fmt.Sprintf("%s %s is empty (an interrupted write by registry 3.0 or older)", e.Kind, e.Path)
	case len(trimmed) < len(b) && digest.Digest(trimmed).Validate() == nil:
		p.Kind, p.Target = LinkTrailingBytes, digest.Digest(trimmed)
		p.Message = fmt.Sprintf("%s %s holds %s with extra whitespace or newline; the registry answers it with a server error", e.Kind, e.Path, trimmed)
	case errors.Is(err, digest.ErrDigestUnsupported):
		p.Kind, p.Message = LinkUnknownAlg, fmt.Sprintf("%s %s names an unknown digest algorithm: %q", e.Kind, e.Path, quote(b))
	default:
		p.Kind, p.Message = LinkUnparsable, fmt.Sprintf("%s %s does not hold a digest: %q", e.Kind, e.Path, quote(b))
	}
	return "", p, false
}

// checkUpload reports stale and malformed upload sessions.
func (s *checker) checkUpload(e regstore.Entry, opts Options) []Problem {
	p := Problem{Path: e.Path, Repository: e.Repository}
	b, err := regstore.ReadFileMax(s.fsys, e.Path+"/startedat", regstore.MaxLinkSize)
	started, perr := time.Parse(time.RFC3339, string(b))
	if err != nil || perr != nil {
		p.Kind = UploadMalformed
		p.Message = fmt.Sprintf("upload %s has no readable startedat, so the registry will never purge it", e.Path)
		return []Problem{p}
	}
	if age := opts.Now().Sub(started); age > opts.StaleUploads {
		p.Kind = UploadStale
		p.Message = fmt.Sprintf("upload %s was started %s ago (%s)", e.Path, age.Round(time.Second), started.Format(time.RFC3339))
		return []Problem{p}
	}
	return nil
}

// checkNames reports the repository directories whose name is not valid,
// and, in every repository met, the tag directories without a current link
// or whose name is not a valid tag.
func (s *checker) checkNames(st *checkState) ([]Problem, error) {
	var out []Problem
	for _, repo := range sortedKeys(st.repos) {
		if err := regstore.ValidateName(repo); err != nil {
			out = append(out, Problem{Kind: NameInvalid, Path: s.layout.Repository(repo), Repository: repo,
				Message: fmt.Sprintf("repository %q: %v; the registry lists it in its catalog and its own gc aborts on it; regstore gc keeps everything it references", repo, errors.Unwrap(err))})
		}
		dir := s.layout.Tags(repo)
		entries, err := fs.ReadDir(s.fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, &regstore.Error{Op: "check", Repository: repo, Path: dir, Err: err}
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue // a file or a symbolic link: reported by the walk
			}
			tag := e.Name()
			p := s.layout.Tag(repo, tag)
			if err := regstore.ValidateTag(tag); err != nil {
				out = append(out, Problem{Kind: TagInvalid, Path: p, Repository: repo, Tag: tag,
					Message: fmt.Sprintf("tag directory %s of %s is not a valid tag name; the registry cannot serve it, but its --delete-untagged (and regstore gc's) keeps the manifest it names", tag, repo)})
			}
			if _, ok := st.tagCurrent[repo][tag]; !ok {
				if _, err := fs.Stat(s.fsys, s.layout.TagCurrent(repo, tag)); errors.Is(err, fs.ErrNotExist) {
					out = append(out, Problem{Kind: TagWithoutCurrent, Path: p, Repository: repo, Tag: tag,
						Message: fmt.Sprintf("tag %s:%s has no current link: the registry lists it and fails to pull it", repo, tag)})
				}
			}
		}
	}
	return out, nil
}

// checkRepositories checks tags and manifests once every link is known.
func (s *checker) checkRepositories(st *checkState) []Problem {
	var out []Problem
	repos := sortedKeys(st.revisions)
	for _, repo := range sortedKeys(st.tagCurrent) {
		if _, ok := st.revisions[repo]; !ok {
			repos = append(repos, repo)
		}
	}
	for _, repo := range repos {
		for _, d := range sortedDigests(st.revisions[repo]) {
			target := st.revisions[repo][d]
			if _, ok := st.blobs[target]; !ok {
				continue // reported as blob-missing
			}
			out = append(out, s.checkManifest(st, repo, target)...)
		}
		for _, tag := range sortedKeys(st.tagCurrent[repo]) {
			cur := st.tagCurrent[repo][tag]
			if !st.tagIndex[repo][tag][cur.Target] {
				cur.Kind = TagNotInIndex
				cur.Message = fmt.Sprintf("tag %s:%s points at %s, which its index does not record", repo, tag, cur.Target)
				out = append(out, cur)
			}
			if _, ok := st.revisions[repo][cur.Target]; !ok {
				cur.Kind = TagUnresolvable
				cur.Message = fmt.Sprintf("tag %s:%s points at %s, which is not a manifest of the repository (pulls fail)", repo, tag, cur.Target)
				out = append(out, cur)
			} else if _, ok := st.blobs[cur.Target]; !ok {
				cur.Kind = BlobMissing
				cur.Message = fmt.Sprintf("tag %s:%s points at %s, whose data is missing", repo, tag, cur.Target)
				out = append(out, cur)
			}
		}
	}
	return out
}

// checkManifest parses one manifest and checks what it references.
func (s *checker) checkManifest(st *checkState, repo string, d digest.Digest) []Problem {
	p := Problem{Path: s.layout.BlobData(d), Repository: repo, Digest: d}
	m, err := s.Manifest(d)
	if err != nil {
		p.Kind = ManifestInvalid
		if errors.Is(err, regstore.ErrManifestTooLarge) {
			p.Kind = ManifestTooLarge
		}
		if errors.Is(err, regstore.ErrDigestMismatch) {
			return nil // reported by the re-hash
		}
		p.Message = fmt.Sprintf("manifest %s in %s cannot be read: %v", d, repo, errors.Unwrap(err))
		return []Problem{p}
	}
	var out []Problem
	refs := func(ds []digestKind) {
		for _, ref := range ds {
			st.referenced[ref.d] = true
			if _, ok := st.blobs[ref.d]; !ok {
				q := p
				q.Kind, q.Target = ReferenceMissing, ref.d
				q.Message = fmt.Sprintf("manifest %s in %s references %s %s, which is not in the store", d, repo, ref.kind, ref.d)
				out = append(out, q)
				continue
			}
			links := st.layers[repo]
			if ref.kind == "child manifest" {
				links = st.revisions[repo]
			}
			if _, ok := links[ref.d]; !ok {
				q := p
				q.Kind, q.Target = ReferenceUnlinked, ref.d
				q.Message = fmt.Sprintf("manifest %s in %s references %s %s, which is not linked in the repository (pulls of it fail)", d, repo, ref.kind, ref.d)
				out = append(out, q)
			}
		}
	}
	var ds []digestKind
	for b := range m.Blobs() {
		if len(b.URLs) == 0 {
			ds = append(ds, digestKind{b.Digest, "blob"})
		}
	}
	for _, c := range m.Children() {
		ds = append(ds, digestKind{c.Digest, "child manifest"})
	}
	refs(ds)
	return out
}

type digestKind struct {
	d    digest.Digest
	kind string
}

// rehash verifies every blob's data on a bounded number of workers.
func (s *checker) rehash(ctx context.Context, st *checkState, n int, pr *progressState, yield func(Problem, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ds := sortedDigests(st.blobs)
	var total int64
	for _, size := range st.blobs {
		total += size
	}
	pr.update(func(p *Progress) { p.Phase, p.TotalBlobs, p.TotalBytes = "rehash", len(ds), total })
	found := make(chan Problem)
	go func() {
		defer close(found)
		_ = workers.Run(ctx, n, len(ds), func(i int) error {
			defer pr.update(func(p *Progress) { p.Blobs++; p.Bytes += st.blobs[ds[i]] })
			report := func(p Problem) {
				select {
				case found <- p:
				case <-ctx.Done():
				}
			}
			b, err := s.Blob(ds[i])
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			if err != nil {
				report(Problem{Kind: BlobUnreadable, Path: s.layout.BlobData(ds[i]), Digest: ds[i],
					Message: fmt.Sprintf("blob %s cannot be read: %v", ds[i], errors.Unwrap(err))})
				return nil
			}
			switch err := b.Verify(); {
			case err == nil:
			case errors.Is(err, regstore.ErrDigestMismatch) || errors.Is(err, regstore.ErrSizeMismatch):
				report(Problem{Kind: BlobCorrupt, Path: b.Path(), Digest: b.Digest(),
					Message: fmt.Sprintf("blob %s is corrupt: %v", b.Digest(), errors.Unwrap(err))})
			case errors.Is(err, fs.ErrNotExist):
				// removed meanwhile
			default:
				report(Problem{Kind: BlobUnreadable, Path: b.Path(), Digest: b.Digest(),
					Message: fmt.Sprintf("blob %s cannot be read: %v", b.Digest(), errors.Unwrap(err))})
			}
			return nil
		}, nil)
	}()
	for p := range found {
		if !yield(p, nil) {
			cancel()
			for range found {
			}
			return
		}
	}
	if err := ctx.Err(); err != nil {
		yield(Problem{}, err)
	}
}

// checker is a store seen by a check or a repair: its backend and layout at
// hand.
type checker struct {
	*regstore.Store
	fsys   fs.FS
	layout regstore.Layout
}

func newChecker(s *regstore.Store) *checker {
	return &checker{Store: s, fsys: s.FS(), layout: s.Layout()}
}

// quote is b for a message, cut at 80 bytes.
func quote(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// progressState reports Progress, one call at a time.
type progressState struct {
	mu sync.Mutex
	fn func(Progress)
	p  Progress
}

func (ps *progressState) update(f func(*Progress)) {
	if ps.fn == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f(&ps.p)
	ps.fn(ps.p)
}

// counting wraps yield to count the problems it passes on.
func (ps *progressState) counting(yield func(Problem, error) bool) func(Problem, error) bool {
	if ps.fn == nil {
		return yield
	}
	return func(p Problem, err error) bool {
		if err == nil {
			ps.update(func(p *Progress) { p.Problems++ })
		}
		return yield(p, err)
	}
}

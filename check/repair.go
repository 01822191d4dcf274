package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// RepairOptions selects what [Repair] does. Each repair is chosen on
// its own; the zero value does nothing.
type RepairOptions struct {
	// RemoveDanglingLinks removes links whose target data is missing
	// (blob-missing problems): a _layers or revision link file, as the
	// registry's blob and manifest deletes do; before a revision link, every
	// tag whose current link names it; and for a tag whose current
	// manifest's data is missing, the whole tag, index included, as
	// [regstore.Tag.Delete]. This is the only repair that deletes.
	RemoveDanglingLinks bool
	// RestoreTagIndex writes the missing index entry of a tag whose current
	// link is not recorded in its index (tag-not-in-index).
	RestoreTagIndex bool
	// Quarantine moves aside, never deletes, what the registry cannot
	// serve, into [regstore.QuarantineDir]:
	//
	//   - a corrupt blob's data (blob-corrupt). Its links stay: they name
	//     the right digest, and pushing the content again heals every
	//     repository that links it. Until then the check reports them as
	//     blob-missing.
	//   - an unreadable manifest (manifest-invalid, manifest-too-large):
	//     first every tag of the repository whose current link names it
	//     (whole tag directories), then its revision link directory, so the
	//     repository no longer serves it and the registry's garbage
	//     collection no longer aborts on it; then its data, unless another
	//     link (another repository's revision, or any _layers link) still
	//     names the same bytes, in which case the data stays for them.
	//   - a link file that holds no digest (link-empty,
	//     link-unknown-algorithm, link-unparsable): a tag's whole
	//     directory when it is the tag's current link (the tag cannot be
	//     resolved), otherwise the link's directory (a _layers link,
	//     revision link or tag index entry). Relink, in the same call,
	//     then writes a _layers or revision link a manifest still needs.
	Quarantine bool
	// RemoveTempFiles removes temporary files left by interrupted writes
	// (temp-file) once they are older than TempFileAge, so that a write in
	// progress keeps its file. It deletes only such files.
	RemoveTempFiles bool
	// TempFileAge is the age beyond which RemoveTempFiles removes a
	// temporary file. Zero means [DefaultTempFileAge].
	TempFileAge time.Duration
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
	// Relink writes the link a manifest needs when the data exists
	// (reference-unlinked): the _layers link of a config or layer, the
	// revision link of an index's child (only if the child's data reads as
	// a manifest). A link file that exists but is corrupt is not
	// overwritten.
	Relink bool
	// RestoreGCData puts back blob data that a garbage collection moved
	// aside (gc-interrupted problems naming a blobs/.../data.gc) when the
	// blob's data is missing: a journal-less copy the next collection would
	// not put back. It runs before every other repair, so a link whose data
	// was only moved aside is healed, not removed as dangling. When the data
	// exists the copy aside is left alone.
	RestoreGCData bool
	// DryRun reports what would be done and changes nothing.
	DryRun bool
}

// DefaultTempFileAge is the age beyond which [RepairOptions.RemoveTempFiles]
// removes a temporary file: far longer than any single write takes.
const DefaultTempFileAge = time.Hour

// RepairOp is what a [RepairAction] does.
type RepairOp string

// The operations of [RepairAction].
const (
	RepairRemoveLink RepairOp = "remove-link" // a link file removed
	RepairRemoveTag  RepairOp = "remove-tag"  // a whole tag directory removed
	RepairRemoveFile RepairOp = "remove-file" // a temporary file removed
	RepairWriteLink  RepairOp = "write-link"  // a missing link written
	RepairQuarantine RepairOp = "quarantine"  // a file or directory moved to To
	RepairRestore    RepairOp = "restore"     // data moved aside by gc put back at Path
	RepairSkip       RepairOp = "skip"        // nothing done; Message says why
)

// RepairAction is one step of [Repair], done or, in a dry run, to be
// done.
type RepairAction struct {
	Op RepairOp `json:"op"`
	// Kind is the kind of the problem the action answers.
	Kind ProblemKind `json:"kind"`
	// Path is the file or directory removed, written or moved.
	Path string `json:"path"`
	// To is where a quarantined path was moved.
	To string `json:"to,omitempty"`
	// Link is the content of a written link.
	Link       digest.Digest `json:"link,omitempty"`
	Repository string        `json:"repository,omitempty"`
	Tag        string        `json:"tag,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	// DryRun marks an action that was not done.
	DryRun  bool   `json:"dryRun,omitempty"`
	Message string `json:"message"`
}

// String is the action's sentence.
func (a RepairAction) String() string { return a.Message }

// Repair acts on problems found by [Problems], doing only the repairs
// opts selects (see [RepairOptions]); problems of other kinds are ignored.
// Nothing is deleted unless RemoveDanglingLinks or RemoveTempFiles is
// set. The messages of a dry run's actions say what would be done ("would
// remove ..."), those of a real run what was done ("removed ...").
//
// The problems may be stale: each one is re-validated against the tree just
// before it is acted on, and a problem that no longer holds (or that an
// earlier action of the same call already answered) gets a [RepairSkip]
// action saying why. A dry run validates the same way, taking the actions
// it would have done before into account, so it reports what a real run
// would do on an unchanged tree.
//
// Pointers go before what they point at: dangling links are removed first
// (tags, then revisions, then _layers links), then quarantines (tags, then
// revision links, then data), then the writes of missing tag index entries
// and links. Every action is returned, in order. An error (a backend
// failure, or ctx done) stops the repair; the actions done until then are
// returned with it.
func Repair(ctx context.Context, store *regstore.Store, problems []Problem, opts RepairOptions) ([]RepairAction, error) {
	s := newChecker(store)
	if opts.TempFileAge <= 0 {
		opts.TempFileAge = DefaultTempFileAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rp := &repairer{s: s, dry: opts.DryRun, gone: map[string]bool{}, written: map[string]digest.Digest{}, created: map[string]bool{},
		restored: map[digest.Digest]bool{}, tempCutoff: opts.Now().Add(-opts.TempFileAge)}
	if !opts.DryRun && (opts.RemoveDanglingLinks || opts.RestoreTagIndex || opts.Quarantine || opts.Relink || opts.RestoreGCData || opts.RemoveTempFiles) {
		w, err := writer(s.Store, "repair")
		if err != nil {
			return nil, err
		}
		rp.w = w
	}
	type step struct {
		on   bool
		rank func(Problem) int // -1: not this step's kind
		do   func(Problem) error
	}
	steps := []step{
		{opts.RestoreGCData, rp.asideRank, rp.restoreAside},
		{opts.RemoveTempFiles, kindRank(TempFileLeft), rp.removeTempFile},
		{opts.RemoveDanglingLinks, rp.danglingRank, rp.removeDangling},
		{opts.Quarantine, rp.quarantineRank, rp.quarantine},
		{opts.RestoreTagIndex, kindRank(TagNotInIndex), rp.restoreTagIndex},
		{opts.Relink, kindRank(ReferenceUnlinked), rp.relink},
	}
	for _, st := range steps {
		if !st.on {
			continue
		}
		var todo []Problem
		for _, p := range problems {
			if st.rank(p) >= 0 {
				todo = append(todo, p)
			}
		}
		slices.SortStableFunc(todo, func(a, b Problem) int { return cmp.Compare(st.rank(a), st.rank(b)) })
		for _, p := range todo {
			if err := ctx.Err(); err != nil {
				return rp.actions, err
			}
			if err := st.do(p); err != nil {
				return rp.actions, err
			}
		}
	}
	return rp.actions, nil
}

func kindRank(k ProblemKind) func(Problem) int {
	return func(p Problem) int {
		if p.Kind == k {
			return 0
		}
		return -1
	}
}

// repairer is one run of Repair. In a dry run, gone and written stand for
// the changes not made, so later validations see the tree as it would be.
type repairer struct {
	s        *checker
	w        regstore.WriteFS // nil in a dry run
	dry      bool
	gone     map[string]bool          // paths removed or moved away by this run
	written  map[string]digest.Digest // links written by this run
	created  map[string]bool          // quarantine destinations made by this run
	restored map[digest.Digest]bool   // blob data put back by this run
	actions  []RepairAction
	// named is every _layers and revision link, by the digest it names;
	// read once, when a quarantine first needs it.
	named map[digest.Digest][]string
	// tempCutoff: temporary files modified after it are spared.
	tempCutoff time.Time
}

// entry classifies a problem's path.
func (rp *repairer) entry(p string) regstore.Entry {
	return rp.s.layout.Classify(p, false)
}

// isGone reports whether p or a directory above it was removed or moved by
// this run.
func (rp *repairer) isGone(p string) bool {
	for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		if rp.gone[q] {
			return true
		}
	}
	return false
}

// stat is fs.Stat as the tree is (or, in a dry run, would be) now.
func (rp *repairer) stat(p string) (fs.FileInfo, error) {
	if rp.isGone(p) {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return fs.Stat(rp.s.fsys, p)
}

func (rp *repairer) exists(p string) bool {
	if _, ok := rp.written[p]; (ok || rp.created[p]) && !rp.isGone(p) {
		return true
	}
	_, err := rp.stat(p)
	return err == nil
}

// readLink is readLink as the tree is (or would be) now.
func (rp *repairer) readLink(p string) (digest.Digest, error) {
	if rp.isGone(p) {
		return "", &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	if d, ok := rp.written[p]; ok {
		return d, nil
	}
	return regstore.ReadLink(rp.s.fsys, p)
}

// hasData reports whether blob d's data exists (as a file).
func (rp *repairer) hasData(d digest.Digest) (bool, error) {
	if rp.restored[d] {
		return true, nil
	}
	fi, err := rp.stat(rp.s.layout.BlobData(d))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !fi.IsDir(), nil
}

// dryVerbs are the past-tense verbs action messages start with, and what a
// dry run says instead.
var dryVerbs = [][2]string{{"removed ", "would remove "}, {"moved ", "would move "},
	{"recorded ", "would record "}, {"wrote ", "would write "}}

func (rp *repairer) add(a RepairAction) {
	a.DryRun = rp.dry && a.Op != RepairSkip
	if a.DryRun {
		for _, v := range dryVerbs {
			if rest, ok := strings.CutPrefix(a.Message, v[0]); ok {
				a.Message = v[1] + rest
				break
			}
		}
	}
	rp.actions = append(rp.actions, a)
}

func (rp *repairer) skip(p Problem, why string) {
	rp.add(RepairAction{Op: RepairSkip, Kind: p.Kind, Path: p.Path, Repository: p.Repository, Tag: p.Tag,
		Digest: p.Digest, Message: fmt.Sprintf("%s: %s: nothing done: %s", p.Kind, p.Path, why)})
}

func (rp *repairer) fail(op, path string, err error) error {
	return &regstore.Error{Op: "repair: " + op, Path: path, Err: err}
}

// Restoring data moved aside by gc.

func (rp *repairer) asideRank(p Problem) int {
	if p.Kind != GCInterrupted || p.Digest == "" || p.Path != rp.s.layout.BlobDataAside(p.Digest) {
		return -1
	}
	return 0
}

func (rp *repairer) restoreAside(p Problem) error {
	if !rp.exists(p.Path) {
		rp.skip(p, "the data moved aside is gone")
		return nil
	}
	if ok, err := rp.hasData(p.Digest); err != nil {
		return rp.fail("stat blob", p.Path, err)
	} else if ok {
		rp.skip(p, fmt.Sprintf("the data of %s exists; the copy aside is left for gc", p.Digest))
		return nil
	}
	dst := rp.s.layout.BlobData(p.Digest)
	if !rp.dry {
		if err := regstore.Rename(rp.w, p.Path, dst); err != nil {
			return rp.fail("restore", p.Path, err)
		}
	}
	rp.gone[p.Path] = true
	rp.restored[p.Digest] = true
	rp.add(RepairAction{Op: RepairRestore, Kind: p.Kind, Path: dst, Digest: p.Digest,
		Message: fmt.Sprintf("put back the data of %s that a garbage collection had moved aside", p.Digest)})
	return nil
}

// Removing dangling links.

// danglingRank orders blob-missing problems: tags, then revision links,
// then _layers links.
func (rp *repairer) danglingRank(p Problem) int {
	if p.Kind != BlobMissing {
		return -1
	}
	switch rp.entry(p.Path).Kind {
	case regstore.TagCurrentLink:
		return 0
	case regstore.RevisionLink:
		return 1
	case regstore.LayerLink:
		return 2
	}
	return -1
}

func (rp *repairer) removeDangling(p Problem) error {
	e := rp.entry(p.Path)
	target, err := rp.readLink(p.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rp.skip(p, "the link is gone")
		return nil
	case errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, "the link no longer names a digest")
		return nil
	case err != nil:
		return rp.fail("read link", p.Path, err)
	}
	if ok, err := rp.hasData(target); err != nil {
		return rp.fail("stat blob", p.Path, err)
	} else if ok {
		rp.skip(p, fmt.Sprintf("the data of %s exists now", target))
		return nil
	}
	if regstore.ValidateDigest(target) == nil && rp.exists(rp.s.layout.BlobDataAside(target)) {
		// Its data was moved aside by a garbage collection: put back,
		// never unlinked.
		rp.skip(p, fmt.Sprintf("the data of %s was moved aside by a garbage collection (%s): restore it (restore-gc-data, or the next gc when a journal names it)",
			target, rp.s.layout.BlobDataAside(target)))
		return nil
	}
	switch e.Kind {
	case regstore.TagCurrentLink:
		return rp.removeTag(p.Kind, e.Repository, e.Tag, fmt.Sprintf("its manifest %s has no data", target))
	case regstore.RevisionLink:
		// Tags naming the manifest go first, as the registry's manifest
		// delete does.
		if err := rp.removeTagsNaming(p.Kind, e.Repository, []digest.Digest{e.Digest, target},
			fmt.Sprintf("its manifest %s has no data", target)); err != nil {
			return err
		}
	}
	if !rp.dry {
		if err := rp.w.Remove(p.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rp.fail("remove link", p.Path, err)
		}
	}
	rp.gone[p.Path] = true
	rp.add(RepairAction{Op: RepairRemoveLink, Kind: p.Kind, Path: p.Path, Repository: e.Repository, Digest: e.Digest,
		Message: fmt.Sprintf("removed %s %s of %s, whose target %s has no data", e.Kind, e.Digest, e.Repository, target)})
	return nil
}

// tagsNaming lists the tags of repo whose current link names one of ds.
func (rp *repairer) tagsNaming(repo string, ds []digest.Digest) ([]string, error) {
	dir := rp.s.layout.Tags(repo)
	if rp.isGone(dir) {
		return nil, nil
	}
	entries, err := fs.ReadDir(rp.s.fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, rp.fail("list tags", dir, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cur, err := rp.readLink(rp.s.layout.TagCurrent(repo, e.Name()))
		if err == nil && slices.Contains(ds, cur) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (rp *repairer) removeTagsNaming(kind ProblemKind, repo string, ds []digest.Digest, why string) error {
	tags, err := rp.tagsNaming(repo, ds)
	if err != nil {
		return err
	}
	for _, tag := range tags {
		if err := rp.removeTag(kind, repo, tag, why); err != nil {
			return err
		}
	}
	return nil
}

// removeTag deletes a whole tag directory, current link first.
func (rp *repairer) removeTag(kind ProblemKind, repo, tag, why string) error {
	dir := rp.s.layout.Tag(repo, tag)
	if !rp.dry {
		r, err := rp.s.Repository(repo)
		if err != nil {
			return err
		}
		t, err := r.Tag(tag)
		if err != nil {
			return err
		}
		if err := t.Delete(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	rp.gone[dir] = true
	rp.add(RepairAction{Op: RepairRemoveTag, Kind: kind, Path: dir, Repository: repo, Tag: tag,
		Message: fmt.Sprintf("removed tag %s:%s (whole tag directory, index included): %s", repo, tag, why)})
	return nil
}

// Quarantine.

// quarantineRank orders quarantines: manifests (tags, revision link, then
// their data) before corrupt data.
func (rp *repairer) quarantineRank(p Problem) int {
	switch p.Kind {
	case LinkEmpty, LinkUnknownAlg, LinkUnparsable:
		return 0
	case ManifestInvalid, ManifestTooLarge:
		return 1
	case BlobCorrupt:
		return 2
	}
	return -1
}

func (rp *repairer) quarantine(p Problem) error {
	switch p.Kind {
	case LinkEmpty, LinkUnknownAlg, LinkUnparsable:
		return rp.quarantineLink(p)
	}
	if err := regstore.ValidateDigest(p.Digest); err != nil {
		rp.skip(p, "the problem names no valid digest")
		return nil
	}
	if p.Kind == BlobCorrupt {
		return rp.quarantineCorrupt(p)
	}
	return rp.quarantineManifest(p)
}

func (rp *repairer) quarantineCorrupt(p Problem) error {
	data := rp.s.layout.BlobData(p.Digest)
	if ok, err := rp.hasData(p.Digest); err != nil {
		return rp.fail("stat blob", data, err)
	} else if !ok {
		rp.skip(p, "the data is gone")
		return nil
	}
	b, err := rp.s.Blob(p.Digest)
	if err != nil {
		return rp.fail("stat blob", data, err)
	}
	err = b.Verify()
	switch {
	case err == nil:
		rp.skip(p, "the data now matches its digest")
		return nil
	case !errors.Is(err, regstore.ErrDigestMismatch) && !errors.Is(err, regstore.ErrSizeMismatch):
		return err
	}
	return rp.moveAside(p, data, fmt.Sprintf("moved the corrupt data of blob %s aside; its links stay, so pushing the content again restores it", p.Digest))
}

func (rp *repairer) quarantineManifest(p Problem) error {
	repo, d := p.Repository, p.Digest
	if regstore.ValidateName(repo) != nil {
		rp.skip(p, "the problem names no valid repository")
		return nil
	}
	link := rp.s.layout.RevisionLink(repo, d)
	target, err := rp.readLink(link)
	switch {
	case errors.Is(err, fs.ErrNotExist) && rp.exists(rp.quarantined(rp.s.layout.RevisionLink(repo, d))):
		// An earlier repair moved the revision aside and stopped before
		// the data: finish it.
		return rp.quarantineManifestData(p, fmt.Sprintf("manifest %s cannot be read", d))
	case errors.Is(err, fs.ErrNotExist):
		rp.skip(p, "the revision link is gone")
		return nil
	case errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, "the revision link no longer names a digest")
		return nil
	case err != nil:
		return rp.fail("read link", link, err)
	case target != d:
		rp.skip(p, fmt.Sprintf("the revision link now names %s", target))
		return nil
	}
	if ok, err := rp.hasData(d); err != nil {
		return rp.fail("stat blob", link, err)
	} else if !ok {
		rp.skip(p, "the manifest's data is gone")
		return nil
	}
	_, err = rp.s.Manifest(d)
	switch {
	case err == nil:
		rp.skip(p, "the manifest reads now")
		return nil
	case errors.Is(err, regstore.ErrDigestMismatch):
		rp.skip(p, "the data no longer matches its digest (a blob-corrupt problem)")
		return nil
	case !errors.Is(err, regstore.ErrManifestInvalid):
		return err
	}
	why := fmt.Sprintf("manifest %s cannot be read", d)
	tags, err := rp.tagsNaming(repo, []digest.Digest{d})
	if err != nil {
		return err
	}
	for _, tag := range tags {
		if err := rp.moveAside(p, rp.s.layout.Tag(repo, tag),
			fmt.Sprintf("moved tag %s:%s aside: it points at %s", repo, tag, why)); err != nil {
			return err
		}
	}
	if err := rp.moveAside(p, rp.s.layout.RevisionDir(repo, d),
		fmt.Sprintf("moved the revision link of %s aside: %s", repo, why)); err != nil {
		return err
	}
	return rp.quarantineManifestData(p, why)
}

// quarantineManifestData moves an unreadable manifest's data aside, once
// its revision link is, unless another link still names it.
func (rp *repairer) quarantineManifestData(p Problem, why string) error {
	d := p.Digest
	others, err := rp.otherLinks(d)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		rp.skip(p, fmt.Sprintf("the data of %s stays: %s still names it", d, others[0]))
		return nil
	}
	return rp.moveAside(p, rp.s.layout.BlobData(d), fmt.Sprintf("moved the data of %s aside: %s and no link names it", d, why))
}

// otherLinks lists the _layers and revision links, of any repository, that
// still name d.
func (rp *repairer) otherLinks(d digest.Digest) ([]string, error) {
	if rp.named == nil {
		rp.named = map[digest.Digest][]string{}
		for e, err := range rp.s.Walk() {
			if err != nil {
				return nil, err
			}
			if e.Kind != regstore.LayerLink && e.Kind != regstore.RevisionLink {
				continue
			}
			if t, err := regstore.ReadLink(rp.s.fsys, e.Path); err == nil {
				rp.named[t] = append(rp.named[t], e.Path)
			}
		}
	}
	var out []string
	for _, p := range rp.named[d] {
		if t, err := rp.readLink(p); err == nil && t == d {
			out = append(out, p)
		}
	}
	for p, t := range rp.written {
		if t == d && !rp.isGone(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// quarantined is where p went in the quarantine area when it was first
// moved there.
func (rp *repairer) quarantined(p string) string {
	root := rp.s.layout.Root()
	rel := p
	if root != "." {
		rel = strings.TrimPrefix(p, root+"/")
	}
	return path.Join(root, regstore.QuarantineDir, rel)
}

// quarantinePath is where p goes in the quarantine area: its path relative
// to the layout root, below QuarantineDir, with ".1", ".2"... appended if
// something is already there, so nothing quarantined is ever replaced.
func (rp *repairer) quarantinePath(p string) string {
	dst := rp.quarantined(p)
	for i, cand := 1, dst; ; i++ {
		if !rp.exists(cand) {
			return cand
		}
		cand = fmt.Sprintf("%s.%d", dst, i)
	}
}

// moveAside moves the file or directory p into the quarantine area.
func (rp *repairer) moveAside(p Problem, src, msg string) error {
	fi, err := rp.stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // moved away by an earlier action
	}
	if err != nil {
		return rp.fail("stat", src, err)
	}
	dst := rp.quarantinePath(src)
	if !rp.dry {
		if err := rp.move(src, dst, fi.IsDir()); err != nil {
			return rp.fail("quarantine", src, err)
		}
	}
	rp.gone[src] = true
	rp.created[dst] = true
	rp.add(RepairAction{Op: RepairQuarantine, Kind: p.Kind, Path: src, To: dst, Repository: p.Repository,
		Digest: p.Digest, Message: fmt.Sprintf("%s (%s → %s)", msg, src, dst)})
	return nil
}

// move renames src to dst. A directory moves in one step when the backend
// can rename; otherwise file by file (current links first, so a tag is
// never left pointing at a half-moved state), after which the emptied
// directories are removed. Emptied parent directories of a moved file are
// removed too; nothing that still holds a file is.
func (rp *repairer) move(src, dst string, dir bool) error {
	if !dir {
		if err := regstore.Rename(rp.w, src, dst); err != nil {
			return err
		}
		pruneEmptyDir(rp.w, path.Dir(src))
		return nil
	}
	if r, ok := rp.w.(regstore.RenameFS); ok {
		return r.Rename(src, dst)
	}
	var files []string
	if err := regstore.WalkFiles(rp.s.fsys, src, func(p string, _ fs.FileInfo) error {
		files = append(files, p)
		return nil
	}); err != nil {
		return err
	}
	slices.SortStableFunc(files, func(a, b string) int {
		return cmp.Compare(pointerRank(a), pointerRank(b))
	})
	for _, f := range files {
		if err := regstore.Rename(rp.w, f, path.Join(dst, strings.TrimPrefix(f, src+"/"))); err != nil {
			return err
		}
	}
	pruneEmptyDirs(rp.w, src)
	return nil
}

func pointerRank(p string) int {
	if strings.HasSuffix(p, "/current/link") {
		return 0
	}
	return 1
}

// pruneEmptyDir removes dir if it is an empty directory.
func pruneEmptyDir(w regstore.WriteFS, dir string) {
	if entries, err := fs.ReadDir(w, dir); err == nil && len(entries) == 0 {
		_ = w.Remove(dir)
	}
}

// pruneEmptyDirs removes the directories below dir, and dir, that hold
// no file, bottom-up. Remove refuses non-empty directories, so a file
// written meanwhile is never lost.
func pruneEmptyDirs(w regstore.WriteFS, dir string) {
	entries, err := fs.ReadDir(w, dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			pruneEmptyDirs(w, path.Join(dir, e.Name()))
		}
	}
	pruneEmptyDir(w, dir)
}

// Writing missing links.

func (rp *repairer) restoreTagIndex(p Problem) error {
	if regstore.ValidateName(p.Repository) != nil || regstore.ValidateTag(p.Tag) != nil || regstore.ValidateDigest(p.Target) != nil {
		rp.skip(p, "the problem names no valid repository, tag and digest")
		return nil
	}
	cur := rp.s.layout.TagCurrent(p.Repository, p.Tag)
	d, err := rp.readLink(cur)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rp.skip(p, "the tag is gone")
		return nil
	case errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, "the current link no longer names a digest")
		return nil
	case err != nil:
		return rp.fail("read link", cur, err)
	case d != p.Target:
		rp.skip(p, fmt.Sprintf("the tag now points at %s", d))
		return nil
	}
	entry := rp.s.layout.TagIndexLink(p.Repository, p.Tag, d)
	switch _, err := rp.readLink(entry); {
	case err == nil:
		rp.skip(p, "the index records it now")
		return nil
	case errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, "a corrupt index entry is there (a link-* problem); it is not overwritten")
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return rp.fail("read link", entry, err)
	}
	return rp.writeLink(p, entry, d,
		fmt.Sprintf("recorded %s in the index of tag %s:%s", d, p.Repository, p.Tag))
}

func (rp *repairer) relink(p Problem) error {
	repo, d, ref := p.Repository, p.Digest, p.Target
	if regstore.ValidateName(repo) != nil || regstore.ValidateDigest(d) != nil || regstore.ValidateDigest(ref) != nil {
		rp.skip(p, "the problem names no valid repository, manifest and reference")
		return nil
	}
	// The manifest must still be in the repository and read.
	target, err := rp.readLink(rp.s.layout.RevisionLink(repo, d))
	if err != nil || target != d {
		rp.skip(p, fmt.Sprintf("manifest %s is no longer in %s", d, repo))
		return nil
	}
	if ok, err := rp.hasData(d); err != nil || !ok {
		rp.skip(p, fmt.Sprintf("manifest %s has no data", d))
		return nil
	}
	m, err := rp.s.Manifest(d)
	if err != nil {
		rp.skip(p, fmt.Sprintf("manifest %s cannot be read", d))
		return nil
	}
	var link, what string
	for b := range m.Blobs() {
		if b.Digest == ref && len(b.URLs) == 0 {
			link, what = rp.s.layout.LayerLink(repo, ref), "_layers link"
		}
	}
	for _, c := range m.Children() {
		if c.Digest == ref {
			link, what = rp.s.layout.RevisionLink(repo, ref), "revision link"
		}
	}
	if link == "" {
		rp.skip(p, fmt.Sprintf("manifest %s does not reference %s", d, ref))
		return nil
	}
	if ok, err := rp.hasData(ref); err != nil {
		return rp.fail("stat blob", link, err)
	} else if !ok {
		rp.skip(p, fmt.Sprintf("the data of %s is missing", ref))
		return nil
	}
	if what == "revision link" {
		if _, err := rp.s.Manifest(ref); err != nil {
			rp.skip(p, fmt.Sprintf("child %s does not read as a manifest", ref))
			return nil
		}
	}
	switch _, err := rp.readLink(link); {
	case err == nil:
		rp.skip(p, "the link exists now")
		return nil
	case errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, "a corrupt link file is there (a link-* problem); it is not overwritten")
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return rp.fail("read link", link, err)
	}
	return rp.writeLink(p, link, ref, fmt.Sprintf("wrote the %s of %s in %s, needed by manifest %s", what, ref, repo, d))
}

// writeLink publishes a link to d at link.
func (rp *repairer) writeLink(p Problem, link string, d digest.Digest, msg string) error {
	if !rp.dry {
		if err := regstore.WriteLink(rp.w, link, d); err != nil {
			return rp.fail("write link", link, err)
		}
	}
	rp.written[link] = d
	delete(rp.gone, link)
	rp.add(RepairAction{Op: RepairWriteLink, Kind: p.Kind, Path: link, Link: d, Repository: p.Repository,
		Tag: p.Tag, Digest: p.Digest, Message: msg})
	return nil
}

// writer is the store's write side; its error names op.
func writer(s *regstore.Store, op string) (regstore.WriteFS, error) {
	w, err := s.Writer()
	if e := (*regstore.Error)(nil); errors.As(err, &e) {
		e.Op = op
	}
	return w, err
}

// quarantineLink moves a link that holds no digest aside: a tag's whole
// directory for its current link, otherwise the link's own directory.
func (rp *repairer) quarantineLink(p Problem) error {
	e := rp.entry(p.Path)
	switch e.Kind {
	case regstore.LayerLink, regstore.RevisionLink, regstore.TagCurrentLink, regstore.TagIndexLink:
	default:
		rp.skip(p, "the path is not a link")
		return nil
	}
	switch _, err := rp.readLink(p.Path); {
	case errors.Is(err, fs.ErrNotExist):
		rp.skip(p, "the link is gone")
		return nil
	case err == nil:
		rp.skip(p, "the link names a digest now")
		return nil
	case !errors.Is(err, regstore.ErrCorruptLink):
		rp.skip(p, fmt.Sprintf("the link cannot be read (%v); it is left where it is", err))
		return nil
	}
	if e.Kind == regstore.TagCurrentLink {
		return rp.moveAside(p, rp.s.layout.Tag(e.Repository, e.Tag),
			fmt.Sprintf("moved tag %s:%s aside: its current link holds no digest", e.Repository, e.Tag))
	}
	return rp.moveAside(p, path.Dir(p.Path), fmt.Sprintf("moved the %s %s of %s aside: it holds no digest", e.Kind, e.Digest, e.Repository))
}

// removeTempFile removes a temporary file left by an interrupted write,
// unless it is young enough to belong to a write in progress.
func (rp *repairer) removeTempFile(p Problem) error {
	if rp.entry(p.Path).Kind != regstore.TempFile {
		rp.skip(p, "the path is not a temporary file")
		return nil
	}
	fi, err := rp.stat(p.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rp.skip(p, "the file is gone")
		return nil
	case err != nil:
		return rp.fail("stat", p.Path, err)
	case fi.IsDir():
		rp.skip(p, "the path is a directory")
		return nil
	case fi.ModTime().After(rp.tempCutoff):
		rp.skip(p, fmt.Sprintf("the file was modified at %s, too recently: a write may still be using it",
			fi.ModTime().UTC().Format(time.RFC3339)))
		return nil
	}
	if !rp.dry {
		if err := rp.w.Remove(p.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rp.fail("remove temporary file", p.Path, err)
		}
	}
	rp.gone[p.Path] = true
	rp.add(RepairAction{Op: RepairRemoveFile, Kind: p.Kind, Path: p.Path, Repository: p.Repository,
		Message: fmt.Sprintf("removed temporary file %s, left by an interrupted write", p.Path)})
	return nil
}

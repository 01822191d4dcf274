package retain

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/internal/workers"
)

// Action is what a prune does to a tag.
type Action string

// Actions.
const (
	Keep   Action = "keep"
	Remove Action = "remove"
)

// Rule names that [TagDecision].Rule starts with for kept tags. A kept
// tag's Rule is the first of these, in this order, that keeps it, followed
// by its detail ("keep-last 10", "keep-tags ^v.*$", "referrer of sha256:…").
const (
	RuleNoCurrent     = "no current link" // a tag directory without a current link is left alone
	RuleKeepTags      = "keep-tags"
	RuleNotConsidered = "not considered" // the rule's tags patterns do not match it
	RuleKeepLast      = "keep-last"
	RuleKeepWithin    = "keep-within"
	RuleGrace         = "grace"    // pushed within the grace window
	RuleReferrer      = "referrer" // its manifest refers to a kept manifest
	RuleChanged       = "pushed again since the plan"
)

// TagDecision is what the plan says of one tag.
type TagDecision struct {
	Repository string        `json:"repository"`
	Tag        string        `json:"tag"`
	Digest     digest.Digest `json:"digest"` // what the current link names; "" without one
	// Pushed is the tag's push time: the modification time of its
	// current link, which the registry rewrites on every push of the tag
	// (a push, a re-push of the same digest, a retag). Among equal push
	// times, the tag whose name is greater in byte order counts as the
	// more recent.
	Pushed time.Time `json:"pushed"`
	Action Action    `json:"action"`
	// Rule says what decided: for a kept tag, the keep rule (see RuleKeepLast
	// and the others); for a removed tag, why no keep rule holds.
	Rule string `json:"rule"`
	// ManifestKept says whether the garbage collection after the prune
	// keeps the tag's manifest in the repository: always for kept tags;
	// for removed ones, when another tag, a kept index, a kept referrer's
	// subject, or Policy.KeepUntagged still needs it. Computed through the
	// collection's plan; false when Options.NoBytes.
	ManifestKept bool `json:"manifestKept"`
}

// Plan is what a prune removes and what the garbage collection after it
// frees.
type Plan struct {
	Started time.Time `json:"started"`
	// Cutoff is Started less the grace window: tags pushed after it are
	// kept.
	Cutoff time.Time `json:"cutoff"`
	// Tags are the tags of the repositories the policy covers, by
	// repository in catalog order, then most recent first (push time, then
	// the tag name, greater first).
	Tags []TagDecision `json:"tags"`
	// Bytes is the blob data the garbage collection after the prune frees
	// (the Bytes of GC), with DeleteUntagged unless Policy.KeepUntagged.
	Bytes int64 `json:"bytes"`
	// DeleteUntagged is the collection Bytes is computed for.
	DeleteUntagged bool `json:"deleteUntagged"`
	// GC is that collection's plan, on the tree as it is after the prune;
	// nil with Options.NoBytes.
	GC *gc.Plan `json:"-"`
}

// Removed counts the tags the plan removes.
func (p *Plan) Removed() int {
	n := 0
	for _, t := range p.Tags {
		if t.Action == Remove {
			n++
		}
	}
	return n
}

// Options configures [Decide] and [Prune].
type Options struct {
	// Grace keeps every tag pushed within it before the start, as garbage
	// collection keeps what was written within its window. Zero means
	// [gc.DefaultGrace]; negative turns it off.
	Grace time.Duration
	// Repositories, if set, are globs (as in [Rule].Repositories): only
	// the repositories they match are looked at.
	Repositories []string
	// NoBytes skips the garbage-collection plan: Plan.Bytes stays 0 and
	// ManifestKept false.
	NoBytes bool
	// Workers bounds the repositories evaluated at once. Zero means 4.
	Workers int
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Grace == 0 {
		o.Grace = gc.DefaultGrace
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// tagInfo is one tag as listed.
type tagInfo struct {
	name    string
	d       digest.Digest
	pushed  time.Time
	current bool
}

// Decide evaluates policy p on the store and returns the plan, changing
// nothing. Each repository is matched against the rules in order (the
// first whose glob matches applies; one no rule matches is not looked at);
// its tags are listed with their current links' digests and modification
// times (push times), and each is kept or removed:
//
//   - a tag without a current link is left alone;
//   - a tag a keep-tags pattern matches is kept, and so is one the rule
//     does not consider (Tags set and none matches);
//   - of the considered tags, the KeepLast most recent are kept, and those
//     pushed within KeepWithin;
//   - a tag pushed within the grace window is kept;
//   - a tag whose manifest is a referrer (its subject, or a
//     "sha256-<hex>[.suffix]" tag name as cosign and the OCI referrers
//     tag schema use) of a manifest that is kept is kept, until nothing
//     changes;
//   - every other tag is removed.
//
// A removed tag's manifest is not removed by the prune: the garbage
// collection after it decides, and keeps it while another tag (in any
// repository, for the blobs), a kept index or a kept referrer needs it.
// Unless Options.NoBytes, Decide runs [gc.Mark] on a read-only view of the
// tree without the removed tags, which is the tree after the prune, and
// reports what that collection frees.
func Decide(ctx context.Context, s *regstore.Store, p *Policy, opts Options) (*Plan, error) {
	opts.defaults()
	// Compile a copy: the caller's policy may be shared.
	p = &Policy{KeepUntagged: p.KeepUntagged, Rules: slices.Clone(p.Rules)}
	if err := p.compile(); err != nil {
		return nil, err
	}
	only, err := compileAll(opts.Repositories, compileGlob)
	if err != nil {
		return nil, &PolicyError{Msg: fmt.Sprintf("repositories: %v", err)}
	}
	plan := &Plan{Started: opts.Now(), DeleteUntagged: !p.KeepUntagged, Tags: []TagDecision{}}
	plan.Cutoff = plan.Started.Add(-opts.Grace)
	if opts.Grace < 0 {
		plan.Cutoff = plan.Started.Add(100 * 365 * 24 * time.Hour)
	}

	type job struct {
		repo *regstore.Repository
		rule *Rule
	}
	var jobs []job
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		if len(only) > 0 {
			if _, ok := matchAny(only, r.Name()); !ok {
				continue
			}
		}
		for i := range p.Rules {
			if p.Rules[i].matchesRepo(r.Name()) {
				jobs = append(jobs, job{r, &p.Rules[i]})
				break
			}
		}
	}
	results := make([][]TagDecision, len(jobs))
	err = workers.Run(ctx, opts.Workers, len(jobs), func(i int) error {
		var err error
		results[i], err = decideRepo(jobs[i].repo, jobs[i].rule, p.KeepUntagged, plan)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	for _, ds := range results {
		plan.Tags = append(plan.Tags, ds...)
	}
	if opts.NoBytes {
		return plan, nil
	}
	if err := plan.collect(ctx, s, true, opts); err != nil {
		return nil, err
	}
	return plan, nil
}

// collect plans the garbage collection after the prune and fills in Bytes,
// GC and ManifestKept: on a view without the removed tags when overlay,
// or on the store itself (after a prune).
func (plan *Plan) collect(ctx context.Context, s *regstore.Store, overlay bool, opts Options) error {
	view := s
	if overlay {
		var dirs []string
		for _, t := range plan.Tags {
			if t.Action == Remove {
				dirs = append(dirs, s.Layout().Tag(t.Repository, t.Tag))
			}
		}
		var err error
		view, err = regstore.Open(hideTags(s.FS(), dirs), regstore.WithLayoutRoot(s.Layout().Root()), regstore.ReadOnly())
		if err != nil {
			return err
		}
	}
	gplan, err := gc.Mark(ctx, view, gc.Options{DeleteUntagged: plan.DeleteUntagged, Grace: opts.Grace,
		Workers: opts.Workers, Now: func() time.Time { return plan.Started }})
	if err != nil {
		return err
	}
	plan.GC, plan.Bytes = gplan, gplan.Bytes
	gone := map[string]map[digest.Digest]bool{}
	for repo, ds := range gplan.Manifests {
		gone[repo] = map[digest.Digest]bool{}
		for _, d := range ds {
			gone[repo][d] = true
		}
	}
	for i := range plan.Tags {
		t := &plan.Tags[i]
		t.ManifestKept = t.Digest != "" && !gone[t.Repository][t.Digest]
	}
	return nil
}

var referrerTag = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]+)(\..+)?$`)

// decideRepo decides the tags of one repository under rule.
func decideRepo(r *regstore.Repository, rule *Rule, keepUntagged bool, plan *Plan) ([]TagDecision, error) {
	tags, err := listTags(r)
	if err != nil {
		return nil, err
	}
	// Most recent first; among equal push times the greater name first.
	slices.SortFunc(tags, func(a, b tagInfo) int {
		if c := b.pushed.Compare(a.pushed); c != 0 {
			return c
		}
		return cmp.Compare(b.name, a.name)
	})
	out := make([]TagDecision, len(tags))
	kept := map[digest.Digest]bool{}
	var candidates []int
	rank := 0
	for i, t := range tags {
		d := &out[i]
		*d = TagDecision{Repository: r.Name(), Tag: t.name, Digest: t.d, Pushed: t.pushed, Action: Keep}
		if !t.current {
			d.Rule = RuleNoCurrent
			continue
		}
		considered := len(rule.tags) == 0
		if !considered {
			_, considered = matchAny(rule.tags, t.name)
		}
		if considered {
			rank++
		}
		switch j, keepTag := matchAny(rule.keepTags, t.name); {
		case keepTag:
			d.Rule = RuleKeepTags + " " + rule.KeepTags[j]
		case !considered:
			d.Rule = RuleNotConsidered
		case rank <= rule.KeepLast:
			d.Rule = fmt.Sprintf("%s %d", RuleKeepLast, rule.KeepLast)
		case rule.KeepWithin > 0 && t.pushed.After(plan.Started.Add(-rule.KeepWithin)):
			d.Rule = RuleKeepWithin + " " + formatDuration(rule.KeepWithin)
		case t.pushed.After(plan.Cutoff):
			d.Rule = RuleGrace + " " + formatDuration(plan.Started.Sub(plan.Cutoff))
		default:
			d.Action = Remove
			d.Rule = removeReason(rule, rank, t.pushed, plan.Started)
			candidates = append(candidates, i)
		}
		if d.Action == Keep {
			kept[t.d] = true
		}
	}
	if len(candidates) == 0 {
		return out, nil
	}

	// Referrers of kept manifests, until nothing changes. A subject is kept
	// when a kept tag names it, when it is a child of a kept index (read
	// only if needed), or, with keepUntagged, when it is in the repository.
	subjects := map[int]digest.Digest{}
	for _, i := range candidates {
		if m := referrerTag.FindStringSubmatch(tags[i].name); m != nil {
			subj := digest.NewDigestFromEncoded(digest.Algorithm(m[1]), m[2])
			if regstore.ValidateDigest(subj) == nil {
				subjects[i] = subj
				continue
			}
		}
		// Most manifests are no referrers: only those that mention a
		// subject are parsed.
		if regstore.ValidateDigest(tags[i].d) != nil {
			continue
		}
		p := r.Store().Layout().BlobData(tags[i].d)
		raw, err := regstore.ReadFileMax(r.Store().FS(), p, regstore.MaxManifestSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &regstore.Error{Op: "prune", Repository: r.Name(), Reference: tags[i].name, Path: p, Err: err}
		}
		if !bytes.Contains(raw, []byte(`"subject"`)) {
			continue
		}
		if m, err := regstore.ParseManifest(raw); err == nil {
			if subj, ok := m.Subject(); ok {
				subjects[i] = subj.Digest
			}
		}
	}
	if len(subjects) == 0 {
		return out, nil
	}
	var closure map[digest.Digest]bool // kept plus index children, when needed
	isKept := func(d digest.Digest) (bool, error) {
		if kept[d] {
			return true, nil
		}
		if keepUntagged {
			_, err := r.ManifestBlob(d)
			return err == nil, nil
		}
		if closure == nil {
			closure = map[digest.Digest]bool{}
			var walk func(d digest.Digest) error
			walk = func(d digest.Digest) error {
				if closure[d] {
					return nil
				}
				closure[d] = true
				m, err := r.Manifest(d)
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				if err != nil {
					return err
				}
				for _, c := range m.Children() {
					if err := walk(c.Digest); err != nil {
						return err
					}
				}
				return nil
			}
			for k := range kept {
				if err := walk(k); err != nil {
					return false, err
				}
			}
		}
		return closure[d], nil
	}
	for changed := true; changed; {
		changed = false
		for _, i := range candidates {
			subj, ok := subjects[i]
			if !ok || out[i].Action == Keep {
				continue
			}
			k, err := isKept(subj)
			if err != nil {
				return nil, err
			}
			if k {
				out[i].Action, out[i].Rule = Keep, RuleReferrer+" of "+subj.String()
				kept[tags[i].d] = true
				closure, changed = nil, true
			}
		}
	}
	return out, nil
}

// removeReason says why no keep rule holds for a considered tag.
func removeReason(rule *Rule, rank int, pushed, started time.Time) string {
	var why []string
	if rule.KeepLast > 0 {
		why = append(why, fmt.Sprintf("rank %d > keep-last %d", rank, rule.KeepLast))
	} else {
		why = append(why, "no keep-last")
	}
	if rule.KeepWithin > 0 {
		why = append(why, fmt.Sprintf("pushed %s before the start > keep-within %s",
			formatDuration(started.Sub(pushed).Truncate(time.Second)), formatDuration(rule.KeepWithin)))
	}
	if len(rule.KeepTags) > 0 {
		why = append(why, "no keep-tags match")
	}
	where := "rule"
	if rule.Line > 0 {
		where = fmt.Sprintf("rule at line %d", rule.Line)
	}
	return fmt.Sprintf("%s (%s)", strings.Join(why, ", "), where)
}

// formatDuration writes whole days as "30d", other durations as Go does.
func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// listTags lists r's tags with their current links' targets and
// modification times: through one flat listing on a backend that has one,
// else a stat and a read per tag.
func listTags(r *regstore.Repository) ([]tagInfo, error) {
	s := r.Store()
	l := s.Layout()
	var tags []tagInfo
	if _, ok := s.FS().(regstore.WalkFS); ok {
		seen := map[string]int{}
		dir := l.Tags(r.Name())
		err := regstore.WalkFiles(s.FS(), dir, func(p string, fi fs.FileInfo) error {
			rest := strings.TrimPrefix(p, dir+"/")
			tag, _, _ := strings.Cut(rest, "/")
			if regstore.ValidateTag(tag) != nil {
				return nil
			}
			i, ok := seen[tag]
			if !ok {
				i = len(tags)
				seen[tag] = i
				tags = append(tags, tagInfo{name: tag})
			}
			if rest == tag+"/current/link" {
				tags[i].pushed, tags[i].current = fi.ModTime().UTC(), true
			}
			return nil
		})
		if err != nil {
			return nil, &regstore.Error{Op: "prune", Repository: r.Name(), Path: dir, Err: err}
		}
	} else {
		// One open per tag: its modification time and its content.
		for t, err := range r.Tags() {
			if err != nil {
				return nil, err
			}
			ti := tagInfo{name: t.Name()}
			p := l.TagCurrent(r.Name(), t.Name())
			fi, d, err := statLink(s.FS(), p)
			if err == nil {
				ti.pushed, ti.d, ti.current = fi.ModTime().UTC(), d, true
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, &regstore.Error{Op: "prune", Repository: r.Name(), Reference: t.Name(), Path: p, Err: err}
			}
			tags = append(tags, ti)
		}
		return tags, nil
	}
	for i := range tags {
		if !tags[i].current {
			continue
		}
		p := l.TagCurrent(r.Name(), tags[i].name)
		d, err := regstore.ReadLink(s.FS(), p)
		if errors.Is(err, fs.ErrNotExist) {
			tags[i].current = false // deleted since the listing
			continue
		}
		if err != nil {
			return nil, &regstore.Error{Op: "prune", Repository: r.Name(), Reference: tags[i].name, Path: p, Err: err}
		}
		tags[i].d = d
	}
	return tags, nil
}

// statLink opens the link file p once for its FileInfo and its digest.
func statLink(fsys fs.FS, p string) (fs.FileInfo, digest.Digest, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if fi.IsDir() {
		return nil, "", fmt.Errorf("%w: %s is a directory", regstore.ErrCorruptLink, p)
	}
	if fi.Size() > regstore.MaxLinkSize {
		return nil, "", fmt.Errorf("%w: longer than %d bytes", regstore.ErrCorruptLink, regstore.MaxLinkSize)
	}
	// The size the stat gave, in one read: links are never rewritten in
	// place, only replaced whole.
	var buf [regstore.MaxLinkSize]byte
	n, err := io.ReadFull(f, buf[:fi.Size()])
	if err != nil {
		return nil, "", err
	}
	d, err := regstore.ParseLink(buf[:n])
	return fi, d, err
}

// Prune removes the tags plan removes, as the registry's DELETE by tag
// does (the tag directory, history included; the manifest stays), each
// only if it is as the plan saw it: a tag pushed again since (its current
// link changed) is kept, with Rule RuleChanged, and a tag already gone is
// skipped. It records that in plan, and when anything differed re-plans
// the garbage collection on the pruned tree so that Bytes and ManifestKept
// stay true. Blob data and manifests stay until that collection
// ([gc.Mark] with [gc.Options].DeleteUntagged as plan.DeleteUntagged, then
// [gc.Sweep]).
func Prune(ctx context.Context, s *regstore.Store, plan *Plan, opts Options) error {
	opts.defaults()
	if _, err := s.Writer(); err != nil {
		return err
	}
	l := s.Layout()
	changed := false
	for i := range plan.Tags {
		t := &plan.Tags[i]
		if t.Action != Remove {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.Repository(t.Repository)
		if err != nil {
			return err
		}
		tag, err := r.Tag(t.Tag)
		if err != nil {
			return err
		}
		p := l.TagCurrent(t.Repository, t.Tag)
		fi, err := fs.Stat(s.FS(), p)
		var d digest.Digest
		if err == nil {
			d, err = regstore.ReadLink(s.FS(), p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			changed = true // someone else deleted it
			continue
		}
		if err != nil {
			return &regstore.Error{Op: "prune", Repository: t.Repository, Reference: t.Tag, Path: p, Err: err}
		}
		if !fi.ModTime().Equal(t.Pushed) || d != t.Digest {
			t.Action, t.Rule, t.Digest, t.Pushed = Keep, RuleChanged, d, fi.ModTime().UTC()
			changed = true
			continue
		}
		if err := tag.Delete(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if changed && plan.GC != nil {
		return plan.collect(ctx, s, false, opts)
	}
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/gc"
)

var gcCommand = &command{
	name:     "gc",
	synopsis: "gc [--dry-run] [--delete-untagged] [--drop-orphan-referrers] [--grace DURATION] [--workers N] [--exit-code] [--json] ROOT",
	args:     "ROOT", min: 1, max: 1,
	progress: true,
	help: `
Garbage-collects the tree as "registry garbage-collect" does: marks every
manifest (with --delete-untagged, every tagged one, and the index children
and referrers of what is kept) and what it references, then removes the
blob data nothing marked references, the _layers links to it, and with
--delete-untagged the untagged revisions and their tag index entries.

Referrers (signatures, SBOMs: manifests with a subject) are kept while their
subject is kept. With --delete-untagged, an untagged referrer whose subject
is not in its repository is kept too, unless --drop-orphan-referrers.

Nothing modified less than the grace window before the collection started is
removed, so the registry may keep serving reads; it must not be pushed to
unless the grace window covers the longest push. With --dry-run the tree is
opened read-only and only the plan is printed. Ctrl-C stops between
deletions, leaving a consistent tree.

With --json, prints the plan as one object:
  {"blobs": ["<digest>", ...],
   "layerLinks": {"<repo>": ["<digest>", ...]},
   "manifests": {"<repo>": ["<digest>", ...]},
   "bytes": <bytes of blob data removed>,
   "marked": <manifests and blobs kept>,
   "started": "<RFC 3339 time>", "cutoff": "<RFC 3339 time>" or null,
   "dryRun": <bool>}
blobs is sorted; layerLinks and manifests are {} when empty; cutoff is
null when the grace window is off. Without
--dry-run these fields (and bytes) say what was removed, and two more say
what the plan listed and the sweep kept when it re-validated it:
  "skipped": [{"what": "blob"|"layer link"|"manifest", "repository": "<repo>",
               "digest": "<digest>", "why": "<reason>"}, ...],
  "restored": ["<digest>", ...]   (data an interrupted gc had moved aside)
"unnamed" lists directories holding _manifests whose name is not valid:
everything they reference is kept, and nothing in them removed.`,
	flags: func(fset *flag.FlagSet) action {
		dryRun := fset.Bool("dry-run", false, "only print what would be removed")
		untagged := fset.Bool("delete-untagged", false, "also remove manifests no tag points at")
		dropOrphans := fset.Bool("drop-orphan-referrers", false, "with --delete-untagged, also remove untagged referrers whose subject\nis not in their repository")
		grace := durationVar(fset, "grace", gc.DefaultGrace, "keep everything modified within this `duration` before the start;\na negative value turns the window off (only when nothing writes to the tree)")
		workers := fset.Int("workers", 4, "repositories marked and files removed at once")
		exitCode := fset.Bool("exit-code", false, "exit with status 1 when the plan removes anything")
		asJSON := fset.Bool("json", false, "print the plan as JSON")
		return func(ctx context.Context, inv *invocation) error {
			if *grace == 0 {
				return usagef("--grace 0 is ambiguous: use a positive window, or a negative one to turn it off")
			}
			if *workers < 1 {
				return usagef("--workers must be at least 1")
			}
			if *dropOrphans && !*untagged {
				return usagef("--drop-orphan-referrers needs --delete-untagged")
			}
			s, closeStore, err := inv.openStore(inv.args[0], !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			var cache *invalidator
			if !*dryRun {
				if cache, err = inv.guardRemoval(ctx, inv.args[0], inv.restart); err != nil {
					return err
				}
			}
			opts := gc.Options{DeleteUntagged: *untagged, DropOrphanReferrers: *dropOrphans,
				Grace: *grace, Workers: *workers}
			var phaseStart time.Time
			opts.Progress = func(p gc.Progress) {
				if phaseStart.IsZero() || (p.Phase == "sweep" && p.Removed == 1) {
					phaseStart = time.Now()
				}
				inv.progress.set("%s", gcStatus(p, phaseStart))
			}
			inv.progress.set("marking")
			plan, err := gc.Mark(ctx, s, opts)
			if err != nil {
				return err
			}
			// [] and {} rather than null in JSON.
			if plan.Blobs == nil {
				plan.Blobs = []digest.Digest{}
			}
			if plan.LayerLinks == nil {
				plan.LayerLinks = map[string][]digest.Digest{}
			}
			if plan.Manifests == nil {
				plan.Manifests = map[string][]digest.Digest{}
			}
			// A dry run reports the plan; an apply what it removed, and
			// apart what it kept of the plan, with why.
			report := gcReport{Plan: *plan, DryRun: *dryRun}
			if !*dryRun {
				inv.progress.set("sweeping")
				res, err := gc.Sweep(ctx, s, plan, opts)
				// What the plan names is forgotten by the registry's cache,
				// even when the sweep stopped part way or skipped some: a
				// miss only makes the registry look at the tree again.
				for _, d := range plan.Blobs {
					cache.blobRemoved(context.WithoutCancel(ctx), d)
				}
				// The registry's cache keeps manifests per repository as
				// it keeps layer links.
				for _, links := range []map[string][]digest.Digest{plan.LayerLinks, plan.Manifests} {
					for repo, ds := range links {
						for _, d := range ds {
							cache.layerLinkRemoved(context.WithoutCancel(ctx), repo, d)
						}
					}
				}
				err = errors.Join(err, cache.close())
				if res != nil {
					report.Blobs, report.LayerLinks, report.Manifests, report.Bytes = res.Blobs, res.LayerLinks, res.Manifests, res.Bytes
					report.Skipped, report.Restored = res.Skipped, res.Restored
				}
				if err != nil {
					if res != nil && (len(res.Blobs) > 0 || len(res.LayerLinks) > 0 || len(res.Manifests) > 0) {
						_ = printPlan(inv.stderr, &report)
					}
					return err
				}
			}
			if *asJSON {
				err = writeJSON(inv.stdout, report)
			} else {
				err = printPlan(inv.stdout, &report)
			}
			if err == nil && *exitCode && (len(report.Blobs) > 0 || len(report.LayerLinks) > 0 || len(report.Manifests) > 0) {
				return errFound
			}
			return err
		}
	},
}

// gcReport is what gc prints: the plan on a dry run; on an apply the same
// fields hold what was removed, and skipped what the plan listed and the
// sweep kept.
type gcReport struct {
	gc.Plan
	DryRun   bool            `json:"dryRun"`
	Skipped  []gc.Skipped    `json:"skipped,omitempty"`
	Restored []digest.Digest `json:"restored,omitempty"`
}

// MarshalJSON encodes the plan as gc.Plan encodes itself (a null cutoff
// when the window is off), followed by the report's own fields. Without it
// the embedded plan's MarshalJSON would stand for the whole report.
func (r gcReport) MarshalJSON() ([]byte, error) {
	plan, err := json.Marshal(r.Plan)
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(struct {
		DryRun   bool            `json:"dryRun"`
		Skipped  []gc.Skipped    `json:"skipped,omitempty"`
		Restored []digest.Digest `json:"restored,omitempty"`
	}{r.DryRun, r.Skipped, r.Restored})
	if err != nil {
		return nil, err
	}
	plan = bytes.TrimSuffix(bytes.TrimSpace(plan), []byte("}"))
	return append(append(plan, ','), extra[1:]...), nil
}

func printPlan(w io.Writer, plan *gcReport) error {
	ew := &errWriter{w: w}
	verb := "removed"
	if plan.DryRun {
		verb = "would remove"
	}
	cutoff := "off"
	if !plan.GraceOff() {
		cutoff = "modified before " + plan.Cutoff.Format(time.RFC3339)
	}
	ew.printf("garbage collection%s, started %s, grace window: %s\n",
		map[bool]string{true: " (dry run)"}[plan.DryRun], plan.Started.Format(time.RFC3339), cutoff)
	ew.printf("marked (kept): %d manifests and blobs\n", plan.Marked)
	for _, name := range plan.Unnamed {
		ew.printf("kept everything of %s: not a valid repository name (the registry serves it; see regstore check)\n", name)
	}
	for _, d := range plan.Restored {
		ew.printf("put back blob data an interrupted collection had moved aside: %s\n", d)
	}
	listRepos := func(what string, m map[string][]digest.Digest) {
		n := 0
		for _, ds := range m {
			n += len(ds)
		}
		ew.printf("%s %s in %s\n", verb, count(n, what), count(len(m), "repository"))
		for _, repo := range slices.Sorted(maps.Keys(m)) {
			for _, d := range m[repo] {
				ew.printf("  %s@%s\n", repo, d)
			}
		}
	}
	listRepos("untagged manifest", plan.Manifests)
	listRepos("layer link", plan.LayerLinks)
	ew.printf("%s %s, %s\n", verb, count(len(plan.Blobs), "blob"), humanBytes(plan.Bytes))
	for _, d := range plan.Blobs {
		ew.printf("  %s\n", d)
	}
	if len(plan.Skipped) > 0 {
		ew.printf("kept %s of the plan, re-validated before removal\n", count(len(plan.Skipped), "item"))
		for _, k := range plan.Skipped {
			at := string(k.Digest)
			if k.Repository != "" {
				at = k.Repository + "@" + at
			}
			ew.printf("  %s %s: %s\n", k.What, at, k.Why)
		}
	}
	return ew.err
}

// gcStatus is the progress line of gc: repositories marked, then files
// removed, of their totals, with the pace.
func gcStatus(p gc.Progress, start time.Time) string {
	if p.Phase == "mark" {
		s := fmt.Sprintf("marking: repositories %d/%d", p.Repositories, p.TotalRepositories)
		if r := rate(int64(p.Repositories), int64(p.TotalRepositories), start, false); r != "" {
			s += ", " + r
		}
		return s
	}
	s := fmt.Sprintf("sweeping: removed %d of at most %d (revisions, layer links, blobs)", p.Removed, p.ToRemove)
	if r := rate(int64(p.Removed), int64(p.ToRemove), start, false); r != "" {
		s += ", " + r
	}
	return s
}

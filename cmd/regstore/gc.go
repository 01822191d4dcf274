package main

import (
	"bytes"
	"context"
	"encoding/json"
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
null when the grace window is off.`,
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
			s, closeStore, err := openStore(inv.args[0], !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
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
			if !*dryRun {
				inv.progress.set("sweeping")
				if err := gc.Sweep(ctx, s, plan, opts); err != nil {
					return err
				}
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
			if *asJSON {
				err = writePlanJSON(inv.stdout, plan, *dryRun)
			} else {
				err = printPlan(inv.stdout, plan, *dryRun)
			}
			if err == nil && *exitCode && (len(plan.Blobs) > 0 || len(plan.LayerLinks) > 0 || len(plan.Manifests) > 0) {
				return errFound
			}
			return err
		}
	},
}

func printPlan(w io.Writer, plan *gc.Plan, dryRun bool) error {
	ew := &errWriter{w: w}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	cutoff := "off"
	if !plan.GraceOff() {
		cutoff = "modified before " + plan.Cutoff.Format(time.RFC3339)
	}
	ew.printf("garbage collection%s, started %s, grace window: %s\n",
		map[bool]string{true: " (dry run)"}[dryRun], plan.Started.Format(time.RFC3339), cutoff)
	ew.printf("marked (kept): %d manifests and blobs\n", plan.Marked)
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
	return ew.err
}

// writePlanJSON writes the plan as gc.Plan encodes itself, with "dryRun"
// added at the end.
func writePlanJSON(w io.Writer, plan *gc.Plan, dryRun bool) error {
	b, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	b = append(bytes.TrimSuffix(bytes.TrimSpace(b), []byte("}")), fmt.Sprintf(`,"dryRun":%t}`, dryRun)...)
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
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

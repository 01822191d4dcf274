package main

import (
	"context"
	"errors"
	"flag"
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
   "started": "<RFC 3339 time>", "cutoff": "<RFC 3339 time>",
   "dryRun": <bool>}
blobs is sorted; layerLinks and manifests are {} when empty.`,
	flags: func(fset *flag.FlagSet) action {
		dryRun := fset.Bool("dry-run", false, "only print what would be removed")
		untagged := fset.Bool("delete-untagged", false, "also remove manifests no tag points at")
		dropOrphans := fset.Bool("drop-orphan-referrers", false, "with --delete-untagged, also remove untagged referrers whose subject\nis not in their repository")
		grace := fset.Duration("grace", gc.DefaultGrace, "keep everything modified within this `duration` before the start;\na negative value turns the window off (only when nothing writes to the tree)")
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
			opts.Progress = func(p gc.Progress) {
				switch p.Phase {
				case "mark":
					inv.progress.set("marking: %d repositories", p.Repositories)
				default:
					inv.progress.set("%s: %d removed", p.Phase, p.Removed)
				}
			}
			inv.progress.set("marking")
			plan, err := gc.Mark(ctx, s, opts)
			if err != nil {
				return err
			}
			if !*dryRun {
				inv.progress.set("sweeping")
				err := gc.Sweep(ctx, s, plan, opts)
				// What the plan names is forgotten by the registry's
				// cache even when the sweep stopped part way: a miss only
				// makes it look at the tree again.
				for _, d := range plan.Blobs {
					cache.blobRemoved(context.WithoutCancel(ctx), d)
				}
				for repo, ds := range plan.LayerLinks {
					for _, d := range ds {
						cache.layerLinkRemoved(context.WithoutCancel(ctx), repo, d)
					}
				}
				if err := errors.Join(err, cache.close()); err != nil {
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
				err = writeJSON(inv.stdout, struct {
					*gc.Plan
					DryRun bool `json:"dryRun"`
				}{plan, *dryRun})
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
	if plan.Cutoff.Before(plan.Started) {
		cutoff = "modified before " + plan.Cutoff.Format(time.RFC3339)
	}
	ew.printf("garbage collection%s, started %s, grace window: %s\n",
		map[bool]string{true: " (dry run)"}[dryRun], plan.Started.Format(time.RFC3339), cutoff)
	ew.printf("%d manifests and blobs marked\n", plan.Marked)
	listRepos := func(what string, m map[string][]digest.Digest) {
		n := 0
		for _, ds := range m {
			n += len(ds)
		}
		ew.printf("%s %d %s in %d repositories\n", verb, n, what, len(m))
		for _, repo := range slices.Sorted(maps.Keys(m)) {
			for _, d := range m[repo] {
				ew.printf("  %s@%s\n", repo, d)
			}
		}
	}
	listRepos("untagged manifests", plan.Manifests)
	listRepos("layer links", plan.LayerLinks)
	ew.printf("%s %d blobs, %s\n", verb, len(plan.Blobs), humanBytes(plan.Bytes))
	for _, d := range plan.Blobs {
		ew.printf("  %s\n", d)
	}
	return ew.err
}

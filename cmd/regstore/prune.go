package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/retain"
)

var pruneCommand = &command{
	name:     "prune",
	synopsis: "prune [--policy FILE] [--keep-last N] [--keep-within DURATION] [--keep-tags REGEX]... [--tags REGEX]... [--repos GLOB]... [--keep-untagged] [--grace DURATION] [--no-bytes] [--dry-run] [--json] ROOT",
	args:     "ROOT", min: 1, max: 1,
	help: `
Removes tags by a retention policy, as the registry's DELETE by tag does
(the tag and its history; never a manifest, never blob data), and says what
the garbage collection after it frees. Run "regstore gc --delete-untagged"
(or "regstore gc" with untagged: keep) afterwards to free it; that
collection keeps every manifest another tag, a kept index or a kept
referrer needs, and every blob any repository needs.

The policy is a file (--policy, YAML or JSON) or, for one rule, flags:
  untagged: delete          # or keep: the collection after keeps untagged manifests
  rules:                    # per repository, the first rule whose glob matches
    - repositories: ["org/**"]     # "*" within a component, "**" across
      tags: ["build-.*"]           # optional: only these tags are considered
      keep-tags: ["v[0-9.]+", "latest"]   # always kept
      keep-last: 10                # the 10 most recently pushed
      keep-within: 30d             # pushed within 30 days
Tag patterns are anchored regular expressions. Keep rules are OR'ed. A tag's
push time is its current link's modification time, which the registry
rewrites on every push of the tag; among equal times the greater tag name
(byte order) counts as more recent. Tags pushed within the grace window,
and tags whose manifest is a referrer of a kept manifest (its subject, or a
"sha256-<hex>.sig"-style tag), are kept. Repositories no rule matches are
not looked at; --repos with --policy limits the run to those repositories.

With --dry-run the tree is opened read-only and only the plan is printed.
Beside a live registry, a tag pushed again since the plan is kept.

With --json, prints one object:
  {"tags": [{"repository", "tag", "digest", "pushed": "<RFC 3339>",
             "action": "keep"|"remove", "rule", "manifestKept": <bool>}, ...],
   "bytes": <blob bytes the collection after frees; null with --no-bytes>,
   "deleteUntagged": <the collection bytes is for>, "dryRun": <bool>}
rule says what kept the tag, or why none did; manifestKept whether the
collection keeps the tag's manifest in its repository.`,
	flags: func(fset *flag.FlagSet) action {
		policyFile := fset.String("policy", "", "the policy `file` (YAML or JSON)")
		keepLast := fset.Int("keep-last", 0, "keep the `N` most recently pushed tags of each repository")
		keepWithin := fset.String("keep-within", "", "keep the tags pushed within this `duration` (\"36h\", \"30d\")")
		var keepTags, considered, repos repeatable
		fset.Var(&keepTags, "keep-tags", "always keep the tags this anchored `regex` matches (repeatable)")
		fset.Var(&considered, "tags", "consider only the tags this anchored `regex` matches; keep the others (repeatable)")
		fset.Var(&repos, "repos", "only the repositories this `glob` matches (repeatable; default all)")
		keepUntagged := fset.Bool("keep-untagged", false, "plan for a collection that keeps untagged manifests (plain \"regstore gc\")")
		grace := fset.Duration("grace", gc.DefaultGrace, "keep the tags pushed within this `duration` before the start;\na negative value turns the window off")
		noBytes := fset.Bool("no-bytes", false, "do not plan the collection after the prune (faster: no manifest\nof the tree is read; bytes is null and manifestKept false)")
		dryRun := fset.Bool("dry-run", false, "only print the plan")
		asJSON := fset.Bool("json", false, "print the plan as JSON")
		return func(ctx context.Context, inv *invocation) error {
			set := map[string]bool{}
			fset.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if *grace == 0 {
				return usagef("--grace 0 is ambiguous: use a positive window, or a negative one to turn it off")
			}
			ruleFlags := set["keep-last"] || set["keep-within"] || set["keep-tags"] || set["tags"] || set["keep-untagged"]
			var p *retain.Policy
			opts := retain.Options{Grace: *grace, NoBytes: *noBytes}
			switch {
			case *policyFile != "" && ruleFlags:
				return usagef("--policy excludes --keep-last, --keep-within, --keep-tags, --tags and --keep-untagged")
			case *policyFile != "":
				data, err := os.ReadFile(*policyFile)
				if err != nil {
					return err
				}
				if p, err = retain.ParsePolicy(*policyFile, data); err != nil {
					return err
				}
				opts.Repositories = repos
			case !set["keep-last"] && !set["keep-within"] && !set["keep-tags"]:
				return usagef("give --policy, or at least one of --keep-last, --keep-within and --keep-tags (--keep-last 0 removes every considered tag)")
			default:
				if *keepLast < 0 {
					return usagef("--keep-last must be 0 or more")
				}
				rule := retain.Rule{Repositories: repos, Tags: considered, KeepTags: keepTags, KeepLast: *keepLast}
				if set["keep-within"] {
					d, err := retain.ParseDuration(*keepWithin)
					if err != nil {
						return usagef("--keep-within: %v", err)
					}
					rule.KeepWithin = d
				}
				p = &retain.Policy{KeepUntagged: *keepUntagged, Rules: []retain.Rule{rule}}
			}
			s, closeStore, err := openStore(inv.args[0], !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			plan, err := retain.Decide(ctx, s, p, opts)
			if err != nil {
				return err
			}
			if !*dryRun {
				if err := retain.Prune(ctx, s, plan, opts); err != nil {
					return err
				}
			}
			if *asJSON {
				var bytes *int64
				if !*noBytes {
					bytes = &plan.Bytes
				}
				return writeJSON(inv.stdout, struct {
					Tags           []retain.TagDecision `json:"tags"`
					Bytes          *int64               `json:"bytes"`
					DeleteUntagged bool                 `json:"deleteUntagged"`
					DryRun         bool                 `json:"dryRun"`
				}{plan.Tags, bytes, plan.DeleteUntagged, *dryRun})
			}
			return printPrune(inv.stdout, plan, *dryRun, !*noBytes)
		}
	},
}

func init() {
	exitHelp["prune"] = "0 on success, 2 on a usage or I/O error, 130 when interrupted."
}

func printPrune(w io.Writer, plan *retain.Plan, dryRun, withBytes bool) error {
	ew := &errWriter{w: w}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	window := "off"
	if plan.Cutoff.Before(plan.Started) {
		window = "tags pushed after " + plan.Cutoff.Format(time.RFC3339) + " kept"
	}
	ew.printf("prune%s, started %s, grace window: %s\n",
		map[bool]string{true: " (dry run)"}[dryRun], plan.Started.Format(time.RFC3339), window)
	repo, repos := "", 0
	for _, t := range plan.Tags {
		if t.Repository != repo {
			repo = t.Repository
			repos++
			ew.printf("%s\n", repo)
		}
		d := string(t.Digest)
		if len(d) > 19 {
			d = d[:19]
		}
		ew.printf("  %-6s %-24s %-19s %s  %s\n", t.Action, t.Tag, d, t.Pushed.UTC().Format(time.RFC3339), t.Rule)
	}
	ew.printf("%s %d of %d tags in %d repositories\n", verb, plan.Removed(), len(plan.Tags), repos)
	gcCmd := "regstore gc --delete-untagged"
	if !plan.DeleteUntagged {
		gcCmd = "regstore gc"
	}
	if withBytes {
		ew.printf("manifests and blob data stay until %q, which then frees %s\n", gcCmd, humanBytes(plan.Bytes))
	} else {
		ew.printf("manifests and blob data stay until %q\n", gcCmd)
	}
	return ew.err
}

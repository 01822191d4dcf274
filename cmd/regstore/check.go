package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
)

// problemKinds are every kind check.Problems reports, for --ignore.
var problemKinds = []check.ProblemKind{
	check.BlobCorrupt, check.BlobMissing, check.BlobOrphan, check.LinkEmpty,
	check.LinkTrailingBytes, check.LinkUnknownAlg, check.LinkUnparsable, check.TagNotInIndex,
	check.TagUnresolvable, check.ManifestInvalid, check.ManifestTooLarge, check.ReferenceMissing,
	check.ReferenceUnlinked, check.UploadStale, check.UploadMalformed, check.TempFileLeft,
	check.UnknownFileInTree, check.GCInterrupted, check.NameInvalid, check.SymlinkInTree,
	check.LinkMismatch, check.LinkIsDirectory, check.TagWithoutCurrent, check.TagInvalid, check.BlobUnreadable,
}

// repairNames maps the --repair actions to what they turn on.
var repairNames = map[string]func(*check.RepairOptions){
	"remove-dangling-links": func(o *check.RepairOptions) { o.RemoveDanglingLinks = true },
	"restore-tag-index":     func(o *check.RepairOptions) { o.RestoreTagIndex = true },
	"quarantine":            func(o *check.RepairOptions) { o.Quarantine = true },
	"relink":                func(o *check.RepairOptions) { o.Relink = true },
	"restore-gc-data":       func(o *check.RepairOptions) { o.RestoreGCData = true },
	"remove-temp-files":     func(o *check.RepairOptions) { o.RemoveTempFiles = true },
}

var checkCommand = &command{
	name:     "check",
	synopsis: "check [--links-only] [--workers N] [--ignore KIND,...] [--repair ACTION,...] [--dry-run] [--json] ROOT",
	args:     "ROOT", min: 1, max: 1,
	progress: true,
	help: `
Checks the tree's integrity: every link parses and names data that exists,
every tag resolves and is in its index, every manifest reads and has its
references in the store and linked in its repository, no upload is stale or
malformed, no temporary or unknown file is left; then, unless --links-only,
re-hashes every blob's data (on --workers at once). Nothing is written unless
--repair is given.

--repair takes a comma-separated list of actions (or "all"):
  remove-dangling-links  remove links whose data is missing (blob-missing),
                         and tags pointing at a missing manifest
  remove-temp-files      remove temporary files left by interrupted writes
                         (temp-file) once they are an hour old
  restore-tag-index      write a tag's missing index entry (tag-not-in-index)
  quarantine             move corrupt blobs, unreadable manifests and link
                         files holding no digest (link-empty,
                         link-unknown-algorithm, link-unparsable) aside,
                         into _quarantine/ below the layout root
  relink                 write the missing link of a config, layer or index
                         child whose data exists (reference-unlinked)
  restore-gc-data        put back blob data a garbage collection moved
                         aside (gc-interrupted) when the data is missing;
                         runs first, so such links are healed, not removed
Only remove-dangling-links and remove-temp-files delete.
After repairing, the tree is checked again and what remains is reported.
With --dry-run, the repairs are only listed (and the tree is opened
read-only).

--ignore takes problem kinds that do not count (neither printed nor in the
exit status), for example blob-orphan,upload-stale.

Problem kinds:
` + wrapList(kindList(), "  ", 76) + `

With --json, prints one object:
  {"problems": [<problem>, ...],
   "repairs": [<action>, ...],
   "remaining": [<problem>, ...],
   "clean": <bool>}
where a problem is
  {"kind": "<kind>", "path": "<path below ROOT>", "repository": "<name>",
   "tag": "<tag>", "digest": "<digest>", "target": "<digest>",
   "message": "<sentence>"}
(repository, tag, digest and target only when they apply) and an action is
  {"op": "remove-link"|"remove-tag"|"remove-file"|"write-link"|"quarantine"|"restore"|"skip",
   "kind": "<problem kind>", "path": "<path>", "to": "<quarantine path>",
   "link": "<digest written>", "repository": "<name>", "tag": "<tag>",
   "digest": "<digest>", "dryRun": true, "message": "<sentence>"}
(to, link, repository, tag, digest and dryRun only when they apply).
problems are those found first, in the order found; repairs and remaining
appear only with --repair (remaining only without --dry-run: the problems
the second check found). clean is true exactly when the exit status is 0.`,
	flags: func(fset *flag.FlagSet) action {
		linksOnly := fset.Bool("links-only", false, "skip re-hashing blob data (a fast pass over the structure)")
		workers := fset.Int("workers", 4, "blobs re-hashed at once")
		var repairs, ignore stringList
		fset.Var(&repairs, "repair", "repair `actions` (comma-separated, or \"all\")")
		fset.Var(&ignore, "ignore", "problem `kinds` that do not count (comma-separated)")
		dryRun := fset.Bool("dry-run", false, "with --repair, only list the repairs")
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			if *workers < 1 {
				return usagef("--workers must be at least 1")
			}
			var ropts check.RepairOptions
			for _, name := range repairs {
				if name == "all" {
					for _, on := range repairNames {
						on(&ropts)
					}
					continue
				}
				on, ok := repairNames[name]
				if !ok {
					return usagef("unknown repair %q (want %s or all)", name, strings.Join(slices.Sorted(maps.Keys(repairNames)), ", "))
				}
				on(&ropts)
			}
			ignored := map[check.ProblemKind]bool{}
			for _, k := range ignore {
				if !slices.Contains(problemKinds, check.ProblemKind(k)) {
					return usagef("unknown problem kind %q (want one of %s)", k, kindList())
				}
				ignored[check.ProblemKind(k)] = true
			}
			if *dryRun && len(repairs) == 0 {
				return usagef("--dry-run needs --repair")
			}
			ropts.DryRun = *dryRun
			repairing := len(repairs) > 0
			s, closeStore, err := inv.openStore(inv.args[0], repairing && !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			copts := check.Options{LinksOnly: *linksOnly, Workers: *workers}

			out := checkOutput{Problems: []check.Problem{}}
			out.Problems, err = runCheckOnce(ctx, s, copts, ignored, inv.progress, "checking")
			if err != nil {
				return err
			}
			out.Clean = len(out.Problems) == 0
			if repairing && len(out.Problems) > 0 {
				inv.progress.set("repairing %s", count(len(out.Problems), "problem"))
				var cache *invalidator
				if !*dryRun {
					if cache, err = inv.guardRemoval(ctx, inv.args[0], inv.restart); err != nil {
						return err
					}
				}
				repairs, err := check.Repair(ctx, s, out.Problems, ropts)
				// A repair may remove or move aside blob data and links: the
				// registry's cache forgets every digest the problems name.
				for _, p := range out.Problems {
					for _, d := range []digest.Digest{p.Digest, p.Target} {
						if d == "" {
							continue
						}
						cache.blobRemoved(context.WithoutCancel(ctx), d)
						if p.Repository != "" {
							cache.layerLinkRemoved(context.WithoutCancel(ctx), p.Repository, d)
						}
					}
				}
				err = errors.Join(err, cache.close())
				if repairs == nil {
					repairs = []check.RepairAction{}
				}
				out.Repairs = &repairs
				if err != nil {
					printCheck(inv.stdout, &out, *linksOnly, *dryRun)
					return err
				}
				if !*dryRun {
					remaining, err := runCheckOnce(ctx, s, copts, ignored, inv.progress, "checking again")
					if err != nil {
						return err
					}
					out.Remaining = &remaining
					out.Clean = len(remaining) == 0
				}
			} else if repairing {
				out.Repairs = &[]check.RepairAction{}
				if !*dryRun {
					out.Remaining = &[]check.Problem{}
				}
			}
			if *asJSON {
				err = writeJSON(inv.stdout, out)
			} else {
				err = printCheck(inv.stdout, &out, *linksOnly, *dryRun)
			}
			if err == nil && !out.Clean {
				return errFound
			}
			return err
		}
	},
}

// checkOutput is check's JSON output.
type checkOutput struct {
	Problems  []check.Problem       `json:"problems"`
	Repairs   *[]check.RepairAction `json:"repairs,omitempty"`
	Remaining *[]check.Problem      `json:"remaining,omitempty"`
	Clean     bool                  `json:"clean"`
}

// check runs check.Problems to its end and returns the problems that count.
func runCheckOnce(ctx context.Context, s *regstore.Store, opts check.Options, ignored map[check.ProblemKind]bool,
	p *progress, what string) ([]check.Problem, error) {
	problems := []check.Problem{}
	var mu sync.Mutex
	var last check.Progress
	var rehashStart time.Time
	opts.Progress = func(cp check.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if cp.Phase == "rehash" && last.Phase != "rehash" {
			rehashStart = time.Now()
		}
		last = cp
	}
	p.setLive(func() string {
		mu.Lock()
		defer mu.Unlock()
		return checkStatus(what, last, rehashStart)
	})
	for pr, err := range check.Problems(ctx, s, opts) {
		if err != nil {
			return nil, err
		}
		if ignored[pr.Kind] {
			continue
		}
		problems = append(problems, pr)
	}
	// Check ends quietly when ctx is done while it re-hashes.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return problems, nil
}

func printCheck(w io.Writer, out *checkOutput, linksOnly, dryRun bool) error {
	ew := &errWriter{w: w}
	mode := ""
	if linksOnly {
		mode = " (links only: blob data not re-hashed)"
	}
	if len(out.Problems) == 0 {
		ew.printf("no problems found%s\n", mode)
		return ew.err
	}
	printProblems(ew, out.Problems)
	ew.printf("found %s%s\n", countKinds(out.Problems), mode)
	if out.Repairs != nil {
		if dryRun {
			ew.printf("\nrepairs (dry run, nothing changed):\n")
		} else {
			ew.printf("\nrepairs:\n")
		}
		if len(*out.Repairs) == 0 {
			ew.printf("  none: no problem is of a kind the chosen repairs handle\n")
		}
		for _, a := range *out.Repairs {
			ew.printf("  %-11s %s\n", a.Op, a.Message)
		}
	}
	if out.Remaining != nil {
		if len(*out.Remaining) == 0 {
			ew.printf("\nafter repair: no problems remain\n")
		} else {
			ew.printf("\nafter repair:\n")
			printProblems(ew, *out.Remaining)
			ew.printf("remaining: %s\n", countKinds(*out.Remaining))
		}
	}
	return ew.err
}

// printProblems prints each problem's kind and sentence, and its path
// when the sentence does not say it.
func printProblems(ew *errWriter, problems []check.Problem) {
	for _, p := range problems {
		ew.printf("%s: %s\n", p.Kind, p.Message)
		if p.Path != "" && !strings.Contains(p.Message, p.Path) {
			ew.printf("    %s\n", p.Path)
		}
	}
}

// countKinds says "3 problems: 1 blob-missing, 2 temp-file".
func countKinds(problems []check.Problem) string {
	n := map[check.ProblemKind]int{}
	for _, p := range problems {
		n[p.Kind]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	noun := "problems"
	if len(problems) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("%d %s: %s", len(problems), noun, strings.Join(parts, ", "))
}

func kindList() string {
	var s []string
	for _, k := range problemKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// wrapList breaks a comma-separated list into indented lines of at most
// width columns.
func wrapList(list, indent string, width int) string {
	var b strings.Builder
	line := indent
	for i, word := range strings.Split(list, ", ") {
		if i > 0 {
			word = ", " + word
			if len(line)+len(word) > width {
				b.WriteString(line + ",\n")
				line, word = indent, word[2:]
			}
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// checkStatus is the progress line of a check: files walked, then blobs
// and bytes re-hashed of their totals, with the pace; and the problems.
func checkStatus(what string, p check.Progress, rehashStart time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", what)
	if p.Phase == "rehash" {
		fmt.Fprintf(&b, "re-hashing blobs %d/%d, %s/%s", p.Blobs, p.TotalBlobs, shortBytes(p.Bytes), shortBytes(p.TotalBytes))
		if r := rate(p.Bytes, p.TotalBytes, rehashStart, true); r != "" {
			fmt.Fprintf(&b, ", %s", r)
		}
	} else {
		fmt.Fprintf(&b, "%s walked", count(p.Files, "file"))
	}
	fmt.Fprintf(&b, "; %s", count(p.Problems, "problem"))
	return b.String()
}

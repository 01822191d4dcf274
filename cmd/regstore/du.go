package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"runtime/debug"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/usage"
)

var duCommand = &command{
	name:     "du",
	synopsis: "du [--json] ROOT [REPO...]",
	args:     "ROOT [REPO...]", min: 1, max: -1,
	help: `
Accounts for the space the tree takes: for each repository (or only the
REPOs named) and each of its tags, the bytes of blob data it references,
the part no other repository (for a tag: no other tag or repository)
references ("unique"), the part shared with others, and what deleting it and
then collecting garbage would free; then, for the whole store, the bytes
reachable from tags, only from untagged manifests, and from nothing. Blob
data is counted once however many links name it; link files are not
counted. Nothing is written.

With --json, prints one object:
  {"blobs": <number of blob data files>, "totalBytes": N,
   "taggedBytes": N, "untaggedBytes": N, "orphanedBytes": N,
   "linkedOnlyBytes": N, "uploadBytes": N,
   "repositories": [
     {"name": "<repo>", "referencedBytes": N, "uniqueBytes": N,
      "sharedBytes": N, "freedBytes": N, "uploadBytes": N,
      "tags": [{"name": "<tag>", "digest": "<digest>",
                "referencedBytes": N, "uniqueBytes": N,
                "sharedBytes": N, "freedBytes": N}, ...]}, ...]}
totalBytes = taggedBytes + untaggedBytes + orphanedBytes, whatever REPOs
are named; orphanedBytes is what garbage collection removes in any mode,
untaggedBytes what it removes with --delete-untagged (less kept referrers),
and linkedOnlyBytes the part of orphanedBytes a _layers link still names.
referencedBytes = uniqueBytes + sharedBytes. Repositories are in catalog
order, tags sorted; a tag that does not resolve has no digest and counts 0.`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			s, closeStore, err := inv.openStore(inv.args[0], false)
			if err != nil {
				return err
			}
			defer closeStore()
			// The live heap is mostly the accounting's blob table, which
			// holds no pointers: collecting more often costs little, and
			// keeps the peak near the table's size rather than twice it.
			defer debug.SetGCPercent(debug.SetGCPercent(duGCPercent))
			a, err := usage.Account(ctx, s)
			if err != nil {
				return err
			}
			// The named repositories, checked before anything is printed.
			var named []*regstore.Repository
			for _, name := range inv.args[1:] {
				r, err := s.Repository(name)
				if err != nil {
					return err
				}
				if ok, err := r.Exists(); err != nil {
					return err
				} else if !ok {
					return fmt.Errorf("repository %s: %w", name, fs.ErrNotExist)
				}
				named = append(named, r)
			}
			repos := a.Repositories(ctx)
			if len(inv.args) > 1 {
				repos = func(yield func(usage.Repository, error) bool) {
					for _, r := range named {
						ru, err := a.Repository(ctx, r)
						if !yield(ru, err) || err != nil {
							return
						}
					}
				}
			}
			bw := bufio.NewWriter(inv.stdout)
			if *asJSON {
				err = writeUsageJSON(bw, a.Totals(), repos)
			} else {
				err = printUsage(bw, a.Totals(), repos)
			}
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			return err
		}
	},
}

// writeUsageJSON writes what writeJSON writes for a usage.Report, one
// repository at a time.
func writeUsageJSON(w io.Writer, totals usage.Totals, repos iter.Seq2[usage.Repository, error]) error {
	head, err := json.MarshalIndent(totals, "", "  ")
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	ew.printf("%s,\n  \"repositories\": [", bytes.TrimSuffix(head, []byte("\n}")))
	n := 0
	for ru, err := range repos {
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(ru, "    ", "  ")
		if err != nil {
			return err
		}
		if n > 0 {
			ew.printf(",")
		}
		ew.printf("\n    %s", b)
		n++
		if ew.err != nil {
			return ew.err
		}
	}
	if n > 0 {
		ew.printf("\n  ")
	}
	ew.printf("]\n}\n")
	return ew.err
}

// duGCPercent is du's GOGC while it runs.
const duGCPercent = 25

// The columns of du's table, right-aligned: as wide as their header or
// the widest shortBytes value ("1023.9 KiB"), and two spaces apart, so that
// rows print as they come.
const duNumberWidth = len("1023.9 KiB")

func printUsage(w io.Writer, totals usage.Totals, repos iter.Seq2[usage.Repository, error]) error {
	ew := &errWriter{w: w}
	widths := []int{}
	row := func(cells ...string) {
		for i, c := range cells[:len(cells)-1] {
			ew.printf("%*s", widths[i]+2, c)
		}
		ew.printf("  %s\n", cells[len(cells)-1])
	}
	header := []string{"REFERENCED", "UNIQUE", "SHARED", "FREED BY DELETE", "UPLOADS", "REPOSITORY / TAG"}
	for _, h := range header[:len(header)-1] {
		widths = append(widths, max(len(h), duNumberWidth))
	}
	row(header...)
	for ru, err := range repos {
		if err != nil {
			return err
		}
		row(shortBytes(ru.ReferencedBytes), shortBytes(ru.UniqueBytes), shortBytes(ru.SharedBytes),
			shortBytes(ru.FreedBytes), shortBytes(ru.UploadBytes), ru.Name)
		for _, tu := range ru.Tags {
			target := "(does not resolve)"
			if tu.Digest != "" {
				target = string(tu.Digest)
			}
			row(shortBytes(tu.ReferencedBytes), shortBytes(tu.UniqueBytes), shortBytes(tu.SharedBytes),
				shortBytes(tu.FreedBytes), "", fmt.Sprintf("  :%s -> %s", tu.Name, target))
		}
		if ew.err != nil {
			return ew.err
		}
	}
	u := totals
	ew.printf("\nstore: %s, %s\n", count(u.Blobs, "blob"), humanBytes(u.TotalBytes))
	ew.printf("  tagged:    %s\n", humanBytes(u.TaggedBytes))
	ew.printf("  untagged:  %s (gc --delete-untagged frees it)\n", humanBytes(u.UntaggedBytes))
	ew.printf("  orphaned:  %s (gc frees it; %s of it still linked in a repository)\n", humanBytes(u.OrphanedBytes), shortBytes(u.LinkedOnlyBytes))
	ew.printf("  uploads:   %s (purge-uploads frees it)\n", humanBytes(u.UploadBytes))
	return ew.err
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"

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
			u, err := usage.Measure(ctx, s)
			if err != nil {
				return err
			}
			if names := inv.args[1:]; len(names) > 0 {
				byName := map[string]usage.Repository{}
				for _, ru := range u.Repositories {
					byName[ru.Name] = ru
				}
				u.Repositories = []usage.Repository{}
				for _, name := range names {
					ru, ok := byName[name]
					if !ok {
						if err := regstore.ValidateName(name); err != nil {
							return err
						}
						return fmt.Errorf("repository %s: %w", name, fs.ErrNotExist)
					}
					u.Repositories = append(u.Repositories, ru)
				}
			}
			for i := range u.Repositories {
				if u.Repositories[i].Tags == nil {
					u.Repositories[i].Tags = []usage.Tag{}
				}
			}
			if *asJSON {
				return writeJSON(inv.stdout, u)
			}
			return printUsage(inv.stdout, u)
		}
	},
}

func printUsage(w io.Writer, u *usage.Report) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	ew := &errWriter{w: tw}
	ew.printf("REFERENCED\tUNIQUE\tSHARED\tFREED BY DELETE\tUPLOADS\t  REPOSITORY / TAG\n")
	for _, ru := range u.Repositories {
		ew.printf("%s\t%s\t%s\t%s\t%s\t  %s\n", shortBytes(ru.ReferencedBytes), shortBytes(ru.UniqueBytes),
			shortBytes(ru.SharedBytes), shortBytes(ru.FreedBytes), shortBytes(ru.UploadBytes), ru.Name)
		for _, tu := range ru.Tags {
			target := "(does not resolve)"
			if tu.Digest != "" {
				target = string(tu.Digest)
			}
			ew.printf("%s\t%s\t%s\t%s\t\t    :%s -> %s\n", shortBytes(tu.ReferencedBytes), shortBytes(tu.UniqueBytes),
				shortBytes(tu.SharedBytes), shortBytes(tu.FreedBytes), tu.Name, target)
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	ew.w = w
	ew.printf("\nstore: %s, %s\n", count(u.Blobs, "blob"), humanBytes(u.TotalBytes))
	ew.printf("  tagged:    %s\n", humanBytes(u.TaggedBytes))
	ew.printf("  untagged:  %s (gc --delete-untagged frees it)\n", humanBytes(u.UntaggedBytes))
	ew.printf("  orphaned:  %s (gc frees it; %s of it still linked in a repository)\n", humanBytes(u.OrphanedBytes), shortBytes(u.LinkedOnlyBytes))
	ew.printf("  uploads:   %s (purge-uploads frees it)\n", humanBytes(u.UploadBytes))
	return ew.err
}

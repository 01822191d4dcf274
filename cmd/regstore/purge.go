package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/regstore/regstore/gc"
)

var purgeCommand = &command{
	name:     "purge-uploads",
	synopsis: "purge-uploads --older-than DURATION [--dry-run] [--json] ROOT",
	args:     "ROOT", min: 1, max: 1,
	help: `
Removes the upload sessions (repositories' _uploads/<id> directories) that
started more than --older-than ago, as the registry's upload purging does
(its default age is 168h). A session's age is that of its startedat file or,
when that is missing or unreadable, of its directory; the registry itself
never purges those. Nothing else is touched. With --dry-run, only lists them
(the tree is opened read-only).

With --json, prints one object:
  {"uploads": [{"repository": "<name>", "id": "<id>", "path": "<path>",
                "startedAt": "<RFC 3339 time>", "modTime": "<RFC 3339 time>",
                "size": <bytes of partial data>}, ...],
   "count": N, "bytes": <total size>, "olderThan": "<duration>",
   "dryRun": <bool>}
startedAt is left out when the session has no readable startedat.`,
	flags: func(fset *flag.FlagSet) action {
		olderThan := durationVar(fset, "older-than", 0, "purge sessions older than this `duration` (required; e.g. 7d, 168h)")
		dryRun := fset.Bool("dry-run", false, "only list what would be removed")
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			if *olderThan <= 0 {
				return usagef("--older-than must be given, and positive")
			}
			s, closeStore, err := inv.openStore(inv.args[0], !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			purged, err := gc.PurgeUploads(ctx, s, gc.PurgeOptions{OlderThan: *olderThan, DryRun: *dryRun})
			out := purgeOutput{Uploads: []uploadJSON{}, OlderThan: olderThan.String(), DryRun: *dryRun}
			for _, u := range purged {
				uj := uploadJSON{Repository: u.Repository.Name(), ID: u.ID, Path: u.Path(), ModTime: u.ModTime, Size: u.Size}
				if !u.StartedAt.IsZero() {
					uj.StartedAt = &u.StartedAt
				}
				out.Uploads = append(out.Uploads, uj)
				out.Bytes += u.Size
			}
			out.Count = len(out.Uploads)
			if err != nil {
				// Say what was removed before the error.
				if len(purged) > 0 && !*asJSON {
					printPurge(inv.stdout, &out)
				}
				return err
			}
			if *asJSON {
				return writeJSON(inv.stdout, out)
			}
			return printPurge(inv.stdout, &out)
		}
	},
}

type purgeOutput struct {
	Uploads   []uploadJSON `json:"uploads"`
	Count     int          `json:"count"`
	Bytes     int64        `json:"bytes"`
	OlderThan string       `json:"olderThan"`
	DryRun    bool         `json:"dryRun"`
}

type uploadJSON struct {
	Repository string     `json:"repository"`
	ID         string     `json:"id"`
	Path       string     `json:"path"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	ModTime    time.Time  `json:"modTime"`
	Size       int64      `json:"size"`
}

func printPurge(w io.Writer, out *purgeOutput) error {
	ew := &errWriter{w: w}
	verb := "removed"
	if out.DryRun {
		verb = "would remove"
	}
	for _, u := range out.Uploads {
		started := "no startedat, directory modified " + u.ModTime.Format(time.RFC3339)
		if u.StartedAt != nil {
			started = "started " + u.StartedAt.Format(time.RFC3339)
		}
		ew.printf("%s/_uploads/%s  %s  (%s)\n", u.Repository, u.ID, shortBytes(u.Size), started)
	}
	ew.printf("%s %s older than %s, %s\n", verb, count(out.Count, "upload session"), out.OlderThan, humanBytes(out.Bytes))
	return ew.err
}

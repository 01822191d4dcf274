package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
)

func init() {
	exitHelp["import-v1"] = "0 when every tag was converted (or was already), 1 when some tags\nwere skipped (bad v1 input, a name v2 refuses, a v2 tag in the way), 2 on a usage or I/O\nerror, 130 when interrupted."
}

var importV1Command = &command{
	name:     "import-v1",
	synopsis: "import-v1 [--dry-run] [--oci] [--uncompressed] [--keep-library] [--overwrite] [--workers N] [--json] ROOT V1_PATH",
	args:     "ROOT V1_PATH", min: 2, max: 2,
	progress: true,
	help: `
Converts the storage of the legacy Python docker-registry (v1) at V1_PATH
(the folder holding images/ and repositories/) into the tree at ROOT
(created when missing), offline.

Every v1 tag becomes a v2 image tagged the same: its layers are the v1
images of its ancestry, base first, decompressed (gzip, bzip2, xz or none;
xz runs the xz program) and stored gzip-compressed, deterministically
(--uncompressed: as plain tars); its config is built from the v1 json as
docker built one (history, empty layers, rootfs.diff_ids). Images are
Docker schema2 (--oci: OCI). Each layer is converted once, however many
tags share it. A tag's links get its v1 push time (last_update).

Repository names: "library/NAME" becomes "NAME" (--keep-library keeps
it); names v2 refuses are lower-cased and their other invalid characters
replaced by '-'; names that then collide are skipped. All are reported.

A tag already converted is left alone, so running again converts only
what is new, and an interrupted run is completed by running it again. A
v2 tag that holds another image (pushed to v2 since) is not moved, and
its v1 tag is skipped, unless --overwrite.

Bad v1 input (a missing image or ancestor, an unfinished push, a checksum
mismatch, a damaged layer) skips the tags that need it, with the reason.
--dry-run reads only the metadata and says what would be converted.

With --json, prints one object:
  {"tags": [{"repository": "<v1 name>", "target": "<v2 name>", "tag": "<tag>",
             "v1Id": "<id>", "digest": "<digest>",
             "status": "converted|unchanged|would-convert|skipped",
             "reason": "<why skipped>"}, ...],
   "names": [{"repository": "<v1 name>", "target": "<v2 name>",
              "action": "rewritten|refused|collision", "reason": "..."}, ...],
   "images": [{"v1Id": "<id>", "reason": "<why its layer failed>"}, ...],
   "stats": {"converted": N, "unchanged": N, "wouldConvert": N, "skipped": N,
             "layers": N, "emptyLayers": N, "layerBytes": N, "blobBytes": N}}
`,
	flags: func(fset *flag.FlagSet) action {
		dryRun := fset.Bool("dry-run", false, "say what would be converted; write nothing")
		oci := fset.Bool("oci", false, "write OCI manifests and configs instead of Docker schema2")
		uncompressed := fset.Bool("uncompressed", false, "store layers as plain tars instead of gzip-compressed")
		keepLibrary := fset.Bool("keep-library", false, `keep the "library/" namespace of one-component names`)
		overwrite := fset.Bool("overwrite", false, "move v2 tags that hold another image to the converted one")
		workers := fset.Int("workers", 0, "layers converted at once (default: the number of CPUs)")
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			if *workers < 0 {
				return usagef("--workers must not be negative")
			}
			root, v1path := inv.args[0], inv.args[1]
			srcDir, err := openSourceDir(v1path)
			if err != nil {
				return err
			}
			defer srcDir.Close()
			src, err := dockerv1.Open(srcDir, ".")
			if err != nil {
				return fmt.Errorf("%s: not a v1 storage path: %w", v1path, err)
			}
			s, closeStore, err := openV1Target(root, *dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			inv.progress.set("reading %s", v1path)
			rep, err := dockerv1.Convert(ctx, s, src, dockerv1.ConvertOptions{DryRun: *dryRun, OCI: *oci,
				Uncompressed: *uncompressed, KeepLibrary: *keepLibrary, Overwrite: *overwrite, Workers: *workers,
				Progress: func(p dockerv1.Progress) {
					inv.progress.set("layers %d/%d (%s/%s), tags %d/%d", p.Layers, p.LayersTotal,
						shortBytes(p.Bytes), shortBytes(p.BytesTotal), p.Tags, p.TagsTotal)
				}})
			if err != nil {
				return err
			}
			if *asJSON {
				err = writeJSON(inv.stdout, rep)
			} else {
				err = printV1Report(inv, rep)
			}
			if err == nil && rep.Stats.Skipped > 0 {
				err = errFound
			}
			return err
		}
	},
}

func printV1Report(inv *invocation, rep *dockerv1.Report) error {
	ew := &errWriter{w: inv.stdout}
	for _, n := range rep.Names {
		switch n.Action {
		case "rewritten":
			ew.printf("renamed %s -> %s (v2 refuses the v1 name)\n", n.Repository, n.Target)
		default:
			ew.printf("%s %s: %s\n", n.Action, n.Repository, n.Reason)
		}
	}
	for _, t := range rep.Tags {
		switch t.Status {
		case dockerv1.Skipped:
			ew.printf("skipped %s:%s (%s): %s\n", t.Repository, t.Tag, shortID(t.ImageID), t.Reason)
		case dockerv1.Planned:
			ew.printf("would convert %s:%s (%s) -> %s:%s\n", t.Repository, t.Tag, shortID(t.ImageID), t.Target, t.Tag)
		default:
			ew.printf("%s %s:%s (%s) -> %s:%s %s\n", t.Status, t.Repository, t.Tag, shortID(t.ImageID), t.Target, t.Tag, t.Digest)
		}
	}
	for _, img := range rep.Images {
		ew.printf("bad %s\n", img.Reason) // the reason names the image
	}
	st := rep.Stats
	ew.printf("tags: %d converted, %d unchanged, %d would convert, %d skipped\n", st.Converted, st.Unchanged, st.Planned, st.Skipped)
	ew.printf("layers: %d converted (%d empty), %s read, %s stored\n", st.Layers, st.EmptyLayers, shortBytes(st.LayerBytes), shortBytes(st.BlobBytes))
	return ew.err
}

// openV1Target opens the tree at root: for a dry run read-only, and as
// an empty tree when root does not exist yet.
func openV1Target(root string, dryRun bool) (*regstore.Store, func(), error) {
	if !dryRun {
		return createStore(root)
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		s, err := regstore.Open(regstore.NewMemFS(), regstore.ReadOnly())
		return s, func() {}, err
	}
	return openStore(root, false)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

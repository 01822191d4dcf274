package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/migrate"
)

// statsHelp documents the "stats" member of the migration commands' JSON.
const statsHelp = `"stats" counts what was done:
  {"repositories": N, "totalBlobs": N, "totalBytes": N,
   "blobs": N, "bytes": N, "blobsLinked": N, "bytesLinked": N,
   "blobsSkipped": N, "bytesSkipped": N,
   "manifests": N, "manifestsSkipped": N, "tags": N}
totalBlobs/totalBytes are the blobs planned; blobs/bytes were copied (and
verified while written), blobsLinked/bytesLinked hard-linked, and
blobsSkipped/bytesSkipped already present in the target. repositories counts
the repositories copied completely (copy only).`

// statsJSON is migrate.CopyStats with stable JSON names.
type statsJSON struct {
	Repositories     int   `json:"repositories"`
	TotalBlobs       int   `json:"totalBlobs"`
	TotalBytes       int64 `json:"totalBytes"`
	Blobs            int   `json:"blobs"`
	Bytes            int64 `json:"bytes"`
	BlobsLinked      int   `json:"blobsLinked"`
	BytesLinked      int64 `json:"bytesLinked"`
	BlobsSkipped     int   `json:"blobsSkipped"`
	BytesSkipped     int64 `json:"bytesSkipped"`
	Manifests        int   `json:"manifests"`
	ManifestsSkipped int   `json:"manifestsSkipped"`
	Tags             int   `json:"tags"`
}

func toStatsJSON(s migrate.CopyStats) statsJSON {
	return statsJSON{s.Repositories, s.TotalBlobs, s.TotalBytes, s.Blobs, s.Bytes, s.BlobsLinked, s.BytesLinked,
		s.BlobsSkipped, s.BytesSkipped, s.Manifests, s.ManifestsSkipped, s.Tags}
}

func printStats(ew *errWriter, s migrate.CopyStats) {
	ew.printf("blobs: %d copied (%s), %d hard-linked (%s), %d already there (%s)\n",
		s.Blobs, shortBytes(s.Bytes), s.BlobsLinked, shortBytes(s.BytesLinked), s.BlobsSkipped, shortBytes(s.BytesSkipped))
	ew.printf("manifests: %d written, %d already there; tags: %d set\n", s.Manifests, s.ManifestsSkipped, s.Tags)
}

// transferFlags are the flags every migration command has.
type transferFlags struct {
	hardLink, trust *bool
	workers         *int
	asJSON          *bool
}

func addTransferFlags(fset *flag.FlagSet, hardLink bool) transferFlags {
	var f transferFlags
	if hardLink {
		f.hardLink = fset.Bool("hardlink", false, "hard-link blob data instead of copying it, where both sides are\non one filesystem (neither copy may then be rewritten in place)")
		f.trust = fset.Bool("trust-digests", false, "with --hardlink, check only the size of linked files, not their digest")
	} else {
		f.hardLink, f.trust = new(bool), new(bool)
	}
	f.workers = fset.Int("workers", 0, "blobs written at once (default 4, or 16 with --hardlink)")
	f.asJSON = fset.Bool("json", false, "print JSON")
	return f
}

func (f transferFlags) check() error {
	if *f.workers < 0 {
		return usagef("--workers must not be negative")
	}
	if *f.trust && !*f.hardLink {
		return usagef("--trust-digests needs --hardlink")
	}
	return nil
}

// ---- import-oci, import-docker-archive, import-skopeo-dir ----

// importOutput is the JSON output of the imports.
type importOutput struct {
	Repository string          `json:"repository"`
	Manifests  []v1.Descriptor `json:"manifests"`
	Tags       []importedTag   `json:"tags"`
	Skipped    []string        `json:"skipped"`
	Stats      statsJSON       `json:"stats"`
}

type importedTag struct {
	Tag     string        `json:"tag"`
	Digest  digest.Digest `json:"digest"`
	RefName string        `json:"refName,omitempty"`
}

const importJSONHelp = `With --json, prints one object:
  {"repository": "<name>",
   "manifests": [{"mediaType": "<type>", "digest": "<digest>", "size": N}, ...],
   "tags": [{"tag": "<tag>", "digest": "<digest>", "refName": "<name>"}, ...],
   "skipped": ["<ref name>", ...],
   "stats": {...}}
manifests are the top-level manifests imported, in source order; tags the
tags set, with the source's name for each (refName, left out when chosen by
digest or on the command line); skipped the source's names that set no tag
(their images are not imported).
`

// reportImport prints what an import did, as JSON or for a human.
func reportImport(inv *invocation, repo string, res *migrate.ImportResult, asJSON bool) error {
	out := newImportOutput(repo, res)
	if asJSON {
		return writeJSON(inv.stdout, out)
	}
	return printImport(inv.stdout, &out, res.Stats)
}

func newImportOutput(repo string, res *migrate.ImportResult) importOutput {
	out := importOutput{Repository: repo, Manifests: []v1.Descriptor{}, Tags: []importedTag{}, Skipped: []string{},
		Stats: toStatsJSON(res.Stats)}
	out.Manifests = append(out.Manifests, res.Manifests...)
	for _, t := range res.Tags {
		out.Tags = append(out.Tags, importedTag{t.Tag, t.Digest, t.RefName})
	}
	out.Skipped = append(out.Skipped, res.Skipped...)
	return out
}

func printImport(w io.Writer, out *importOutput, stats migrate.CopyStats) error {
	ew := &errWriter{w: w}
	ew.printf("imported %s into %s\n", count(len(out.Manifests), "manifest"), out.Repository)
	for _, m := range out.Manifests {
		ew.printf("  %s  %s  %d B\n", m.Digest, m.MediaType, m.Size)
	}
	for _, t := range out.Tags {
		from := ""
		if t.RefName != "" && t.RefName != t.Tag {
			from = "  (from " + t.RefName + ")"
		}
		ew.printf("tagged %s:%s -> %s%s\n", out.Repository, t.Tag, t.Digest, from)
	}
	for _, s := range out.Skipped {
		ew.printf("skipped %s (no tag in %s)\n", s, out.Repository)
	}
	printStats(ew, stats)
	return ew.err
}

// parseTagMap parses --tag values REF=TAG; with allowBare, a lone TAG maps
// the key bare returns (the source's only image).
func parseTagMap(values []string, bare func() (string, error)) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, v := range values {
		ref, tag, ok := cutLast(v, "=")
		if !ok {
			if bare == nil {
				return nil, usagef("--tag %s: want REF=TAG", v)
			}
			if len(values) > 1 {
				return nil, usagef("--tag %s: a lone TAG is only allowed once; use REF=TAG", v)
			}
			key, err := bare()
			if err != nil {
				return nil, err
			}
			ref, tag = key, v
		}
		if err := regstore.ValidateTag(tag); err != nil {
			return nil, usagef("--tag %s: %v", v, err)
		}
		if ref == "" {
			return nil, usagef("--tag %s: empty REF", v)
		}
		m[ref] = tag
	}
	return m, nil
}

// readIndexJSON reads the index.json of the OCI image layout at dir,
// bounded as a manifest is, and refusing anything but a regular file (a
// named pipe there would block the read for ever).
func readIndexJSON(dir string) ([]byte, error) {
	d, err := regstore.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fi, err := d.Stat("index.json")
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "index.json"), regstore.ErrNotRegular)
	}
	b, err := regstore.ReadFileMax(d, "index.json", regstore.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	if len(b) > regstore.MaxManifestSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", filepath.Join(dir, "index.json"), migrate.ErrInvalidSource, regstore.MaxManifestSize)
	}
	return b, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// onlyImageKey returns the ImportOptions.Tags key of the one image an OCI
// image layout holds: the ref name of its only named index.json entry
// (io.containerd.image.name, else org.opencontainers.image.ref.name), or,
// when no entry is named, the digest of its only entry.
func onlyImageKey(dir string) (string, error) {
	b, err := readIndexJSON(dir)
	if err != nil {
		return "", err
	}
	var idx v1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return "", fmt.Errorf("%s: %w: %v", filepath.Join(dir, "index.json"), migrate.ErrInvalidSource, err)
	}
	var named []string
	for _, m := range idx.Manifests {
		name := m.Annotations[migrate.AnnotationContainerdImageName]
		if name == "" {
			name = m.Annotations[migrate.AnnotationRefName]
		}
		if name != "" {
			named = append(named, name)
		}
	}
	switch {
	case len(named) == 1:
		return named[0], nil
	case len(named) == 0 && len(idx.Manifests) == 1:
		return string(idx.Manifests[0].Digest), nil
	case len(named) == 0:
		return "", usagef("--tag TAG: the layout holds %d unnamed entries; use --tag DIGEST=TAG", len(idx.Manifests))
	default:
		return "", usagef("--tag TAG: the layout holds %d named images (%s); use --tag REF=TAG", len(named), strings.Join(named, ", "))
	}
}

var importOCICommand = &command{
	name:     "import-oci",
	synopsis: "import-oci [--tag [REF=]TAG]... [--hardlink] [--trust-digests] [--workers N] [--json] ROOT REPO DIR",
	args:     "ROOT REPO DIR", min: 3, max: 3,
	progress: true,
	help: `
Imports the OCI image layout in DIR (oci-layout, index.json, blobs/; as
"skopeo copy ... oci:DIR:TAG", "crane pull --format oci" or umoci write it)
into repository REPO of the tree at ROOT (created when missing): every
selected index.json entry with everything it references, and its referrers.
Bytes are stored verbatim, so digests never change. Blobs go first (verified
while written), then manifests, then tags, so a registry serving the tree
never sees a tag before its content; an interrupted import is completed by
running it again.

Without --tag, each index.json entry named by a tag ("v1", as skopeo and
umoci write) or by a reference to REPO ("host/REPO:v1") gets that tag;
unnamed entries are imported untagged; entries named for other
repositories are skipped. --tag REF=TAG (repeatable) chooses instead: REF is
an entry's name, or its digest for an unnamed entry. A lone --tag TAG tags
the layout's only image. When nothing is selected (every entry named for
another repository, or a REF the layout does not have), nothing is written
and the command fails, unless --allow-empty.

` + importJSONHelp + "\n" + statsHelp,
	flags: func(fset *flag.FlagSet) action {
		var tags repeatable
		fset.Var(&tags, "tag", "`[REF=]TAG`: set TAG on the entry named REF (repeatable); a lone TAG\ntags the layout's only image")
		allowEmpty := fset.Bool("allow-empty", false, "succeed when nothing is selected (otherwise an error)")
		tf := addTransferFlags(fset, true)
		return func(ctx context.Context, inv *invocation) error {
			if err := tf.check(); err != nil {
				return err
			}
			root, repo, dir := inv.args[0], inv.args[1], inv.args[2]
			if err := regstore.ValidateName(repo); err != nil {
				return usagef("%v", err)
			}
			mapping, err := parseTagMap(tags, func() (string, error) { return onlyImageKey(dir) })
			if err != nil {
				return err
			}
			src, err := openSourceDir(dir)
			if err != nil {
				return err
			}
			defer src.Close()
			s, closeStore, err := inv.createStore(root)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := s.Repository(repo)
			if err != nil {
				return err
			}
			cp := &copyProgress{p: inv.progress}
			inv.progress.set("reading %s", dir)
			res, err := migrate.ImportOCILayout(ctx, r, src, migrate.ImportOptions{Tags: mapping, AllowEmpty: *allowEmpty, HardLink: *tf.hardLink,
				TrustDigests: *tf.trust, Workers: *tf.workers, Progress: cp.update})
			if err != nil {
				return err
			}
			return reportImport(inv, repo, res, *tf.asJSON)
		}
	},
}

// openSourceDir opens a source directory read-only (as a *regstore.Dir, so
// that hard links can be made from it).
func openSourceDir(dir string) (*regstore.Dir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return regstore.OpenDir(dir)
}

var importDockerCommand = &command{
	name:     "import-docker-archive",
	synopsis: "import-docker-archive [--tag REF=TAG]... [--uncompressed] [--allow-empty] [--tmpdir DIR] [--workers N] [--json] ROOT REPO FILE.tar",
	args:     "ROOT REPO FILE.tar", min: 3, max: 3,
	progress: true,
	help: `
Imports the images of a "docker save" archive (a tar file, optionally
gzip-compressed; "-" reads standard input) into repository REPO of the tree
at ROOT (created when missing). Both forms docker writes are read: the
legacy one (manifest.json with Config, RepoTags and Layers) and the newer
one with an OCI image layout inside.

Legacy images become Docker schema2 manifests with the config stored
verbatim (the image ID is kept). Their uncompressed layers are
gzip-compressed, as docker push does, deterministically (the same archive
gives the same digests on every machine) and in parallel (--workers).
--uncompressed stores them as they are instead (media type
application/vnd.docker.image.rootfs.diff.tar, each digest then the layer's
diff_id; crane validate does not accept those). --gzip, the former option,
is accepted and does nothing.

Without --tag, each image named "REPO:TAG" (docker.io's "library/" prefix
optional) or "TAG" gets that tag, and images named for other repositories
are skipped; an archive of one image gets the tag of its name whatever its
repository, as docker load keeps it. --tag REF=TAG (repeatable) chooses
instead: REF is one of the archive's names (such as "alpine:3.20").

The archive is unpacked into a temporary directory (in --tmpdir, default
$TMPDIR or /tmp; it needs room for the unpacked archive) and removed
afterwards; memory stays bounded whatever the archive. Nothing is written to
the tree before the whole archive is read and checked, and nothing for
skipped images. Importing nothing is an error unless --allow-empty.

` + importJSONHelp + "\n" + statsHelp,
	flags: func(fset *flag.FlagSet) action {
		var tags repeatable
		fset.Var(&tags, "tag", "`REF=TAG`: set TAG on the image the archive names REF (repeatable)")
		uncompressed := fset.Bool("uncompressed", false, "store uncompressed layers as they are instead of gzip-compressing them")
		fset.Bool("gzip", false, "accepted for compatibility; layers are gzip-compressed by default")
		allowEmpty := fset.Bool("allow-empty", false, "succeed when no image is selected (otherwise an error)")
		tmpdir := fset.String("tmpdir", "", "unpack the archive in a temporary directory below `DIR` (default: the system's)")
		tf := addTransferFlags(fset, false)
		return func(ctx context.Context, inv *invocation) error {
			if err := tf.check(); err != nil {
				return err
			}
			root, repo, file := inv.args[0], inv.args[1], inv.args[2]
			if err := regstore.ValidateName(repo); err != nil {
				return usagef("%v", err)
			}
			mapping, err := parseTagMap(tags, nil)
			if err != nil {
				return err
			}
			var archive io.Reader = os.Stdin
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				archive = f
			}
			s, closeStore, err := inv.createStore(root)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := s.Repository(repo)
			if err != nil {
				return err
			}
			cp := &copyProgress{p: inv.progress}
			inv.progress.set("reading %s", file)
			res, err := migrate.ImportDockerArchive(ctx, r, archive, migrate.ImportOptions{Tags: mapping,
				UncompressedLayers: *uncompressed, AllowEmpty: *allowEmpty, SpoolDir: *tmpdir,
				Workers: *tf.workers, Progress: cp.update})
			if err != nil {
				return err
			}
			return reportImport(inv, repo, res, *tf.asJSON)
		}
	},
}

var importSkopeoCommand = &command{
	name:     "import-skopeo-dir",
	synopsis: "import-skopeo-dir [--hardlink] [--trust-digests] [--workers N] [--json] ROOT REPO[:TAG] DIR",
	args:     "ROOT REPO[:TAG] DIR", min: 3, max: 3,
	progress: true,
	help: `
Imports the image in DIR, as "skopeo copy ... dir:DIR" writes it
(manifest.json, version, blobs named by their hex digest; with --all, the
instances of a manifest list too), into repository REPO of the tree at ROOT
(created when missing), and tags it TAG when given. Bytes are stored
verbatim; everything is verified and written in push order, as import-oci
does.

` + importJSONHelp + "skipped is always [].\n\n" + statsHelp,
	flags: func(fset *flag.FlagSet) action {
		tf := addTransferFlags(fset, true)
		return func(ctx context.Context, inv *invocation) error {
			if err := tf.check(); err != nil {
				return err
			}
			root, dir := inv.args[0], inv.args[2]
			ref, err := parseRef(inv.args[1])
			if err != nil || ref.digest != "" {
				return usagef("want REPO[:TAG], got %q", inv.args[1])
			}
			src, err := openSourceDir(dir)
			if err != nil {
				return err
			}
			defer src.Close()
			s, closeStore, err := inv.createStore(root)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := s.Repository(ref.repo)
			if err != nil {
				return err
			}
			cp := &copyProgress{p: inv.progress}
			inv.progress.set("reading %s", dir)
			m, err := migrate.ImportSkopeoDir(ctx, r, src, ref.tag, migrate.ImportOptions{HardLink: *tf.hardLink,
				TrustDigests: *tf.trust, Workers: *tf.workers, Progress: cp.update})
			if err != nil {
				return err
			}
			res := &migrate.ImportResult{Manifests: []v1.Descriptor{m.Descriptor()}, Stats: cp.last}
			if ref.tag != "" {
				res.Tags = []migrate.ImportedTag{{Tag: ref.tag, Digest: m.Digest()}}
			}
			return reportImport(inv, ref.repo, res, *tf.asJSON)
		}
	},
}

// ---- export-oci ----

var exportOCICommand = &command{
	name:     "export-oci",
	synopsis: "export-oci [--tag TAG]... [--untagged] [--hardlink] [--trust-digests] [--workers N] [--json] ROOT REPO DIR",
	args:     "ROOT REPO DIR", min: 3, max: 3,
	progress: true,
	help: `
Writes tags of repository REPO (all of them, or those given with --tag),
with everything they reference and their referrers, to DIR as an OCI image
layout that skopeo (oci:DIR:TAG), crane and umoci read. Bytes are copied
verbatim, so digests never change. DIR is created when missing; an existing
layout there is added to (entries of the same tags are replaced).
index.json is written last, so a reader never sees an entry whose content
is missing. --untagged exports the untagged manifests too, as entries with
no name. Nothing in ROOT is written.

With --json, prints one object:
  {"repository": "<name>", "directory": "<DIR>",
   "manifests": [{"mediaType": "<type>", "digest": "<digest>", "size": N,
                  "refName": "<tag>"}, ...],
   "stats": {...}}
manifests are the entries of the index.json written (refName left out for
unnamed entries, such as referrers).

` + statsHelp,
	flags: func(fset *flag.FlagSet) action {
		var tags stringList
		fset.Var(&tags, "tag", "export this `tag` (repeatable, or comma-separated; default: every tag)")
		untagged := fset.Bool("untagged", false, "also export untagged manifests")
		tf := addTransferFlags(fset, true)
		return func(ctx context.Context, inv *invocation) error {
			if err := tf.check(); err != nil {
				return err
			}
			root, repo, dir := inv.args[0], inv.args[1], inv.args[2]
			if err := regstore.ValidateName(repo); err != nil {
				return usagef("%v", err)
			}
			for _, t := range tags {
				if err := regstore.ValidateTag(t); err != nil {
					return usagef("--tag %s: %v", t, err)
				}
			}
			// Hard links need the store's own *Dir; nothing is written to it.
			s, closeStore, err := inv.openStore(root, *tf.hardLink)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := s.Repository(repo)
			if err != nil {
				return err
			}
			if ok, err := r.Exists(); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("repository %s: %w", repo, os.ErrNotExist)
			}
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
			dst, err := regstore.OpenDir(dir)
			if err != nil {
				return err
			}
			defer dst.Close()
			cp := &copyProgress{p: inv.progress}
			inv.progress.set("planning")
			var only []string
			if len(tags) > 0 {
				only = tags
			}
			stats, err := migrate.ExportOCILayout(ctx, r, dst, migrate.ExportOptions{Tags: only, Untagged: *untagged,
				HardLink: *tf.hardLink, TrustDigests: *tf.trust, Workers: *tf.workers, Progress: cp.update})
			if err != nil {
				return err
			}
			out := exportOutput{Repository: repo, Directory: dir, Manifests: []exportedEntry{}, Stats: toStatsJSON(stats)}
			b, err := readIndexJSON(dir)
			if err != nil {
				return err
			}
			var idx v1.Index
			if err := json.Unmarshal(b, &idx); err != nil {
				return fmt.Errorf("reading back %s: %w", filepath.Join(dir, "index.json"), err)
			}
			for _, m := range idx.Manifests {
				out.Manifests = append(out.Manifests, exportedEntry{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size,
					RefName: m.Annotations[migrate.AnnotationRefName]})
			}
			if *tf.asJSON {
				return writeJSON(inv.stdout, out)
			}
			ew := &errWriter{w: inv.stdout}
			ew.printf("exported %s to %s: index.json lists %s\n", repo, dir, count(len(out.Manifests), "manifest"))
			for _, m := range out.Manifests {
				name := "(unnamed)"
				if m.RefName != "" {
					name = m.RefName
				}
				ew.printf("  %-20s %s  %s\n", name, m.Digest, m.MediaType)
			}
			printStats(ew, stats)
			return ew.err
		}
	},
}

type exportOutput struct {
	Repository string          `json:"repository"`
	Directory  string          `json:"directory"`
	Manifests  []exportedEntry `json:"manifests"`
	Stats      statsJSON       `json:"stats"`
}

type exportedEntry struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	RefName   string        `json:"refName,omitempty"`
}

// ---- copy ----

var copyCommand = &command{
	name:     "copy",
	synopsis: "copy [--repo REPO]... [--tag REPO:TAG]... [--hardlink] [--trust-digests] [--workers N] [--json] SRC_ROOT DST_ROOT",
	args:     "SRC_ROOT DST_ROOT", min: 2, max: 2,
	progress: true,
	help: `
Copies repositories from the tree at SRC_ROOT to the tree at DST_ROOT
(created when missing): every repository, or those given with --repo (whole:
every tag and revision, untagged ones too) and --tag (REPO:TAG: that tag,
with what it references and its referrers). Each blob is verified against
its digest while it is written; blobs DST_ROOT already has are not read
again, so re-running an interrupted copy resumes it. Per repository, blobs
go first, then manifests (children and subjects first), then tags: a
registry serving DST_ROOT never sees a dangling pointer. Tags overwrite tags
of the same name; tag history is not copied; blobs no repository links are
not copied. Nothing in SRC_ROOT is written.

With --hardlink, blob data is hard-linked instead of copied when both trees
are on one filesystem (zero bytes copied; neither copy may be rewritten in
place afterwards, which registries never do).

With --json, prints one object:
  {"source": "<SRC_ROOT>", "destination": "<DST_ROOT>", "stats": {...}}

` + statsHelp,
	flags: func(fset *flag.FlagSet) action {
		var repos stringList
		var tags repeatable
		fset.Var(&repos, "repo", "copy this `repository` whole (repeatable, or comma-separated)")
		fset.Var(&tags, "tag", "copy this `REPO:TAG` (repeatable)")
		tf := addTransferFlags(fset, true)
		return func(ctx context.Context, inv *invocation) error {
			if err := tf.check(); err != nil {
				return err
			}
			opts := migrate.CopyOptions{HardLink: *tf.hardLink, TrustDigests: *tf.trust, Workers: *tf.workers}
			for _, r := range repos {
				if err := regstore.ValidateName(r); err != nil {
					return usagef("--repo %s: %v", r, err)
				}
				opts.Repositories = append(opts.Repositories, r)
			}
			for _, t := range tags {
				ref, err := parseRef(t)
				if err != nil || ref.tag == "" {
					return usagef("--tag %s: want REPO:TAG", t)
				}
				if opts.Tags == nil {
					opts.Tags = map[string][]string{}
				}
				opts.Tags[ref.repo] = append(opts.Tags[ref.repo], ref.tag)
			}
			srcRoot, dstRoot := inv.args[0], inv.args[1]
			if same, err := sameDir(srcRoot, dstRoot); err != nil {
				return err
			} else if same {
				return usagef("SRC_ROOT and DST_ROOT are the same directory")
			}
			// Hard links need the source's own *Dir; nothing is written to it.
			src, closeSrc, err := inv.openStore(srcRoot, *tf.hardLink)
			if err != nil {
				return err
			}
			defer closeSrc()
			dst, closeDst, err := inv.createStore(dstRoot)
			if err != nil {
				return err
			}
			defer closeDst()
			cp := &copyProgress{p: inv.progress}
			inv.progress.set("planning")
			opts.Progress = cp.update
			stats, err := migrate.Copy(ctx, dst, src, opts)
			if err != nil {
				return err
			}
			if *tf.asJSON {
				return writeJSON(inv.stdout, struct {
					Source      string    `json:"source"`
					Destination string    `json:"destination"`
					Stats       statsJSON `json:"stats"`
				}{srcRoot, dstRoot, toStatsJSON(stats)})
			}
			ew := &errWriter{w: inv.stdout}
			ew.printf("copied %s from %s to %s\n", count(stats.Repositories, "repository"), srcRoot, dstRoot)
			printStats(ew, stats)
			return ew.err
		}
	},
}

// sameDir reports whether a and b are the same existing directory (a
// missing b is not).
func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

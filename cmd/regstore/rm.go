package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

var rmCommand = &command{
	name:     "rm",
	synopsis: "rm [--dry-run] [--json] ROOT REPO[:TAG|@DIGEST]...",
	args:     "ROOT and at least one REPO[:TAG|@DIGEST]", min: 2, max: -1,
	help: `
Deletes, for each reference in turn, as the registry's API would:
  REPO:TAG       the tag (its current link first, then its directory and
                 history), as DELETE by tag does; the manifest stays
  REPO@DIGEST    the manifest: every tag pointing at it (deleted whole),
                 then its revision link, as DELETE by digest does
  REPO           the whole repository: its tags, revisions, _layers links
                 and upload sessions. Nested repositories (REPO/sub) and
                 the repositories above it are left untouched.
Blob data is never deleted here: run "regstore gc" afterwards to free it.
With --dry-run, only says what would be deleted (the tree is opened
read-only). A reference that does not exist is an error (exit status 2);
the references before it have been deleted then.

With --json, prints one object:
  {"deleted": [{"ref": "<as given>", "kind": "tag"|"manifest"|"repository",
                "repository": "<name>", "tag": "<tag>", "digest": "<digest>",
                "tags": ["<tag>", ...], "manifests": N,
                "nested": ["<repo>", ...]}, ...],
   "dryRun": <bool>}
For a tag, digest is the manifest it pointed at ("" when it had no current
link). For a manifest, tags are the tags deleted with it. For a repository,
tags are its tags, manifests the number of its revisions, and nested the
repositories below it that stay. Members that do not apply are left out.`,
	flags: func(fset *flag.FlagSet) action {
		dryRun := fset.Bool("dry-run", false, "only say what would be deleted")
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			var refs []rmRef
			for _, arg := range inv.args[1:] {
				ref, err := parseRef(arg)
				if err != nil {
					return usagef("%v", err)
				}
				refs = append(refs, ref)
			}
			s, closeStore, err := inv.openStore(inv.args[0], !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			var cache *invalidator
			if !*dryRun && slices.ContainsFunc(refs, func(r rmRef) bool { return r.tag == "" }) {
				// Deleting a repository deletes its layer links; deleting a
				// manifest its revision link, which the registry's cache
				// also keeps per repository.
				if cache, err = inv.guardRemoval(ctx, inv.args[0], inv.restart); err != nil {
					return err
				}
			}
			out := rmOutput{Deleted: []rmResult{}, DryRun: *dryRun}
			for _, ref := range refs {
				if err := ctx.Err(); err != nil {
					return err
				}
				res, err := remove(s, ref, *dryRun)
				switch {
				case *dryRun || ref.tag != "":
				case ref.digest == "":
					cache.repositoryRemoved(context.WithoutCancel(ctx), ref.repo)
				default:
					cache.layerLinkRemoved(context.WithoutCancel(ctx), ref.repo, ref.digest)
				}
				if err != nil {
					if !*asJSON {
						printRm(inv.stdout, &out) // what was done before
					}
					return errors.Join(err, cache.close())
				}
				out.Deleted = append(out.Deleted, *res)
			}
			if err := cache.close(); err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(inv.stdout, out)
			}
			return printRm(inv.stdout, &out)
		}
	},
}

// rmRef is a parsed REPO[:TAG|@DIGEST].
type rmRef struct {
	arg, repo, tag string
	digest         digest.Digest
}

func parseRef(arg string) (rmRef, error) {
	ref := rmRef{arg: arg, repo: arg}
	if i := strings.IndexByte(arg, '@'); i >= 0 {
		ref.repo, ref.digest = arg[:i], digest.Digest(arg[i+1:])
		if err := regstore.ValidateDigest(ref.digest); err != nil {
			return ref, fmt.Errorf("%s: %w", arg, err)
		}
	} else if i := strings.LastIndexByte(arg, ':'); i > strings.LastIndexByte(arg, '/') {
		ref.repo, ref.tag = arg[:i], arg[i+1:]
		if err := regstore.ValidateTag(ref.tag); err != nil {
			return ref, fmt.Errorf("%s: %w", arg, err)
		}
	}
	if err := regstore.ValidateName(ref.repo); err != nil {
		return ref, fmt.Errorf("%s: %w", arg, err)
	}
	return ref, nil
}

type rmOutput struct {
	Deleted []rmResult `json:"deleted"`
	DryRun  bool       `json:"dryRun"`
}

type rmResult struct {
	Ref        string        `json:"ref"`
	Kind       string        `json:"kind"`
	Repository string        `json:"repository"`
	Tag        string        `json:"tag,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	Tags       []string      `json:"tags,omitempty"`
	Manifests  int           `json:"manifests,omitempty"`
	Nested     []string      `json:"nested,omitempty"`
}

// remove deletes (or with dryRun describes) one reference.
func remove(s *regstore.Store, ref rmRef, dryRun bool) (*rmResult, error) {
	r, err := s.Repository(ref.repo)
	if err != nil {
		return nil, err
	}
	l := s.Layout()
	res := &rmResult{Ref: ref.arg, Repository: ref.repo}
	switch {
	case ref.tag != "":
		res.Kind, res.Tag = "tag", ref.tag
		t, err := r.Tag(ref.tag)
		if err != nil {
			return nil, err
		}
		if _, err := fs.Stat(s.FS(), l.Tag(ref.repo, ref.tag)); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t, err)
		}
		if d, err := t.Digest(); err == nil {
			res.Digest = d
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if !dryRun {
			return res, t.Delete()
		}
	case ref.digest != "":
		res.Kind, res.Digest = "manifest", ref.digest
		found := false
		for d, err := range r.Manifests() {
			if err != nil {
				return nil, err
			}
			found = found || d == ref.digest
		}
		if !found {
			return nil, fmt.Errorf("manifest %s@%s: %w", ref.repo, ref.digest, fs.ErrNotExist)
		}
		for t, err := range r.Tags() {
			if err != nil {
				return nil, err
			}
			if d, err := t.Digest(); err == nil && d == ref.digest {
				res.Tags = append(res.Tags, t.Name())
			}
		}
		if !dryRun {
			return res, r.DeleteManifest(ref.digest)
		}
	default:
		res.Kind = "repository"
		found := false
		for _, dir := range []string{l.Manifests(ref.repo), l.Layers(ref.repo), l.Uploads(ref.repo)} {
			_, err := fs.Stat(s.FS(), dir)
			if err == nil {
				found = true
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		if !found {
			return nil, fmt.Errorf("repository %s: %w", ref.repo, fs.ErrNotExist)
		}
		for t, err := range r.Tags() {
			if err != nil {
				return nil, err
			}
			res.Tags = append(res.Tags, t.Name())
		}
		for _, err := range r.Manifests() {
			if err != nil {
				return nil, err
			}
			res.Manifests++
		}
		for other, err := range s.Repositories() {
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(other.Name(), ref.repo+"/") {
				res.Nested = append(res.Nested, other.Name())
			}
		}
		if !dryRun {
			return res, s.DeleteRepository(ref.repo)
		}
	}
	return res, nil
}

func printRm(w io.Writer, out *rmOutput) error {
	ew := &errWriter{w: w}
	verb := "deleted"
	if out.DryRun {
		verb = "would delete"
	}
	for _, r := range out.Deleted {
		switch r.Kind {
		case "tag":
			target := "no current link"
			if r.Digest != "" {
				target = "pointed at " + string(r.Digest)
			}
			ew.printf("%s tag %s:%s (%s)\n", verb, r.Repository, r.Tag, target)
		case "manifest":
			ew.printf("%s manifest %s@%s", verb, r.Repository, r.Digest)
			if len(r.Tags) > 0 {
				ew.printf(" and its tags %s", strings.Join(r.Tags, ", "))
			}
			ew.printf("\n")
		case "repository":
			ew.printf("%s repository %s: %s, %s\n", verb, r.Repository, count(len(r.Tags), "tag"), count(r.Manifests, "manifest"))
			if len(r.Nested) > 0 {
				ew.printf("  kept: nested repositories %s\n", strings.Join(r.Nested, ", "))
			}
		}
	}
	if len(out.Deleted) > 0 {
		ew.printf("blob data stays until \"regstore gc\"\n")
	}
	return ew.err
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
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

var inspectCommand = &command{
	name:     "inspect",
	synopsis: "inspect [--json] ROOT [REPO...]",
	args:     "ROOT [REPO...]", min: 1, max: -1,
	help: `
Lists what a registry would serve from the tree: each repository (in catalog
order) with its tags, its manifests (as enumerated by the registry: revision
links whose data exists) with their media type, size and references, and the
blobs linked in it; then every blob data file with its size. With REPO
arguments, only those repositories, and only the blobs they hold (their
manifests and linked blobs whose data exists). Nothing is written.

With --json, prints one object:
  {"repositories": {"<name>": {
      "tags": {"<tag>": "<digest>"},
      "manifests": {"<digest>": {"mediaType": "<type>", "size": <bytes>,
                                 "references": ["<digest>", ...],
                                 "subject": "<digest>"}},
      "layers": ["<digest>", ...]}},
   "blobs": {"<digest>": <bytes>}}
references are the config, the layers and the child manifests; subject
appears only when the manifest has one. A tag without a current link maps to
"". A manifest that cannot be read has an "error" member instead of its
contents (and a warning goes to stderr).`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			stdout := inv.stdout
			s, closeStore, err := inv.openStore(inv.args[0], false)
			if err != nil {
				return err
			}
			defer closeStore()
			if len(inv.args) > 1 { // some repositories: small, built whole
				out, err := inspect(ctx, s, inv.args[1:])
				if err != nil {
					return err
				}
				if *asJSON {
					return writeJSON(stdout, out)
				}
				return out.print(stdout)
			}
			// The whole tree: streamed, one repository at a time, so that
			// memory does not grow with the tree.
			bw := bufio.NewWriter(stdout)
			if *asJSON {
				err = inspectJSON(ctx, s, bw)
			} else {
				err = inspectText(ctx, s, bw)
			}
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			return err
		}
	},
}

type inspectOutput struct {
	Repositories map[string]*repoOutput  `json:"repositories"`
	Blobs        map[digest.Digest]int64 `json:"blobs"`

	order    []string // repositories in catalog order
	warnings []string
}

type repoOutput struct {
	Tags      map[string]digest.Digest          `json:"tags"`
	Manifests map[digest.Digest]*manifestOutput `json:"manifests"`
	Layers    []digest.Digest                   `json:"layers"`

	tagOrder      []string
	manifestOrder []digest.Digest
}

type manifestOutput struct {
	MediaType  string          `json:"mediaType,omitempty"`
	Size       int64           `json:"size"`
	References []digest.Digest `json:"references"`
	Subject    digest.Digest   `json:"subject,omitempty"`
	Error      string          `json:"error,omitempty"`

	kinds []string // "config", "layer" or "child", per reference
}

func inspect(ctx context.Context, s *regstore.Store, names []string) (*inspectOutput, error) {
	out := &inspectOutput{Repositories: map[string]*repoOutput{}, Blobs: map[digest.Digest]int64{}}
	if len(names) > 0 {
		return inspectRepositories(ctx, s, names, out)
	}
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ro, err := inspectRepository(r, out)
		if err != nil {
			return nil, err
		}
		out.order = append(out.order, r.Name())
		out.Repositories[r.Name()] = ro
	}
	if err := unlistedWarnings(s, out); err != nil {
		return nil, err
	}
	for d, err := range s.Blobs() {
		if err != nil {
			return nil, err
		}
		b, err := s.Blob(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out.Blobs[d] = b.Size()
	}
	return out, nil
}

func inspectRepository(r *regstore.Repository, out *inspectOutput) (*repoOutput, error) {
	ro := &repoOutput{Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]*manifestOutput{}, Layers: []digest.Digest{}}
	for t, err := range r.Tags() {
		if err != nil {
			return nil, err
		}
		d, err := t.Digest()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		ro.Tags[t.Name()] = d
		ro.tagOrder = append(ro.tagOrder, t.Name())
	}
	for d, err := range r.Manifests() {
		if err != nil {
			return nil, err
		}
		mo := &manifestOutput{References: []digest.Digest{}}
		ro.Manifests[d] = mo
		ro.manifestOrder = append(ro.manifestOrder, d)
		m, err := r.Manifest(d)
		if err != nil {
			mo.Error = err.Error()
			if b, err := r.Blob(d); err == nil {
				mo.Size = b.Size()
			}
			out.warnings = append(out.warnings, err.Error())
			continue
		}
		mo.MediaType, mo.Size = m.MediaType(), m.Size()
		if c, ok := m.Config(); ok {
			mo.References, mo.kinds = append(mo.References, c.Digest), append(mo.kinds, "config")
		}
		for _, l := range m.Layers() {
			mo.References, mo.kinds = append(mo.References, l.Digest), append(mo.kinds, "layer")
		}
		for _, c := range m.Children() {
			mo.References, mo.kinds = append(mo.References, c.Digest), append(mo.kinds, "child")
		}
		if subj, ok := m.Subject(); ok {
			mo.Subject = subj.Digest
		}
	}
	for d, err := range r.Layers() {
		if err != nil {
			return nil, err
		}
		ro.Layers = append(ro.Layers, d)
	}
	return ro, nil
}

func (out *inspectOutput) print(w io.Writer) error {
	ew := &errWriter{w: w}
	var manifests, tags int
	for _, name := range out.order {
		ro := out.Repositories[name]
		manifests += len(ro.Manifests)
		tags += len(ro.Tags)
		ro.print(ew, name)
	}
	var bytes int64
	for _, n := range out.Blobs {
		bytes += n
	}
	ew.printf("\n%s, %s, %s; %s, %s\n",
		count(len(out.Repositories), "repository"), count(tags, "tag"), count(manifests, "manifest"), count(len(out.Blobs), "blob"), humanBytes(bytes))
	for _, warn := range out.warnings {
		ew.printf("warning: %s\n", warn)
	}
	return ew.err
}

// inspectRepositories is inspect of the named repositories only, with the
// blobs they hold.
func inspectRepositories(ctx context.Context, s *regstore.Store, names []string, out *inspectOutput) (*inspectOutput, error) {
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, dup := out.Repositories[name]; dup {
			continue
		}
		r, err := existingRepository(s, name)
		if err != nil {
			return nil, err
		}
		ro, err := inspectRepository(r, out)
		if err != nil {
			return nil, err
		}
		out.order = append(out.order, r.Name())
		out.Repositories[r.Name()] = ro
		var held []digest.Digest
		held = append(held, ro.Layers...)
		held = append(held, ro.manifestOrder...)
		for _, d := range held {
			if _, ok := out.Blobs[d]; ok {
				continue
			}
			b, err := s.Blob(d)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out.Blobs[d] = b.Size()
		}
	}
	return out, nil
}

// inspectJSON writes what writeJSON would for {"repositories": {name:
// repoOutput}, "blobs": {digest: size}}, one repository and one blob at a
// time: the repositories sorted by name (as a map's keys are), the blobs in
// listing order, which is digest order.
func inspectJSON(ctx context.Context, s *regstore.Store, w io.Writer) error {
	var names []string
	for r, err := range s.Repositories() {
		if err != nil {
			return err
		}
		names = append(names, r.Name())
	}
	slices.Sort(names)
	ew := &errWriter{w: w}
	ew.printf("{\n  \"repositories\": {")
	out := &inspectOutput{}
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.Repository(name)
		if err != nil {
			return err
		}
		ro, err := inspectRepository(r, out)
		if err != nil {
			return err
		}
		key, err := json.Marshal(name)
		if err != nil {
			return err
		}
		val, err := json.MarshalIndent(ro, "    ", "  ")
		if err != nil {
			return err
		}
		if i > 0 {
			ew.printf(",")
		}
		ew.printf("\n    %s: %s", key, val)
		if ew.err != nil {
			return ew.err
		}
	}
	if len(names) > 0 {
		ew.printf("\n  ")
	}
	ew.printf("},\n  \"blobs\": {")
	n := 0
	var last digest.Digest
	for b, err := range s.BlobFiles() {
		if err != nil {
			return err
		}
		if n > 0 && b.Digest <= last {
			return fmt.Errorf("inspect: blobs listed out of order (%s after %s)", b.Digest, last)
		}
		if n > 0 {
			ew.printf(",")
		}
		ew.printf("\n    %q: %d", b.Digest, b.Info.Size())
		last = b.Digest
		n++
		if ew.err != nil {
			return ew.err
		}
	}
	if n > 0 {
		ew.printf("\n  ")
	}
	ew.printf("}\n}\n")
	return ew.err
}

// inspectText prints each repository as it is read, in catalog order,
// then the totals and the warnings.
func inspectText(ctx context.Context, s *regstore.Store, w io.Writer) error {
	ew := &errWriter{w: w}
	out := &inspectOutput{}
	var repos, manifests, tags int
	for r, err := range s.Repositories() {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ro, err := inspectRepository(r, out)
		if err != nil {
			return err
		}
		repos++
		manifests += len(ro.Manifests)
		tags += len(ro.Tags)
		ro.print(ew, r.Name())
		if ew.err != nil {
			return ew.err
		}
	}
	var blobs int
	var bytes int64
	for b, err := range s.BlobFiles() {
		if err != nil {
			return err
		}
		blobs++
		bytes += b.Info.Size()
	}
	ew.printf("\n%s, %s, %s; %s, %s\n",
		count(repos, "repository"), count(tags, "tag"), count(manifests, "manifest"), count(blobs, "blob"), humanBytes(bytes))
	if err := unlistedWarnings(s, out); err != nil {
		return err
	}
	for _, warn := range out.warnings {
		ew.printf("warning: %s\n", warn)
	}
	return ew.err
}

// print prints repository name as inspect's text output shows it.
func (ro *repoOutput) print(ew *errWriter, name string) {
	ew.printf("%s\n", name)
	tagsOf := map[digest.Digest][]string{}
	ew.printf("  tags (%d)\n", len(ro.Tags))
	for _, t := range ro.tagOrder {
		d := ro.Tags[t]
		switch {
		case d == "":
			ew.printf("    %s  (no current link)\n", t)
		case ro.Manifests[d] == nil:
			ew.printf("    %s -> %s  (manifest not in the repository)\n", t, d)
		default:
			ew.printf("    %s -> %s\n", t, d)
		}
		tagsOf[d] = append(tagsOf[d], t)
	}
	ew.printf("  manifests (%d)\n", len(ro.Manifests))
	for _, d := range ro.manifestOrder {
		mo := ro.Manifests[d]
		label := "untagged"
		if ts := tagsOf[d]; len(ts) > 0 {
			label = strings.Join(ts, ", ")
		}
		if mo.Error != "" {
			ew.printf("    %s  %d B  [%s]  ERROR: %s\n", d, mo.Size, label, mo.Error)
			continue
		}
		ew.printf("    %s  %s  %d B  [%s]\n", d, mo.MediaType, mo.Size, label)
		for i, ref := range mo.References {
			ew.printf("      %-7s %s\n", mo.kinds[i], ref)
		}
		if mo.Subject != "" {
			ew.printf("      %-7s %s\n", "subject", mo.Subject)
		}
	}
	ew.printf("  layers (%d)\n", len(ro.Layers))
	for _, d := range ro.Layers {
		ew.printf("    %s\n", d)
	}
}

// unlistedWarnings says what the registry would list and regstore does not:
// directories holding _manifests with a name regstore cannot name, and
// symbolic links (the registry follows them).
func unlistedWarnings(s *regstore.Store, out *inspectOutput) error {
	for name, err := range s.RepositoryNames() {
		if errors.Is(err, regstore.ErrSymlink) {
			out.warnings = append(out.warnings, fmt.Sprintf("%v: not listed; the registry follows it (see regstore check)", err))
			break
		}
		if err != nil {
			return err
		}
		if regstore.ValidateName(name) != nil {
			out.warnings = append(out.warnings, fmt.Sprintf("repository directory %q: not a valid repository name, not listed; the registry lists it (see regstore check)", name))
		}
	}
	return nil
}

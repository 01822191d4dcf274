package main

import (
	"context"
	"flag"
	"io"
	"io/fs"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

var lsCommand = &command{
	name:     "ls",
	synopsis: "ls [--json] ROOT [REPO]",
	args:     "ROOT [REPO]", min: 1, max: 2,
	help: `
Without REPO, lists the repositories, one a line, in the order of the
registry's catalog. With REPO, lists its tags: each with the digest of the
manifest it points at, the manifest's media type, the image's size (the
manifest, its config and its layers, and for an index every child image,
as the descriptors give them: what a pull downloads at most) and the time
it was pushed (the modification time of the tag's current link). Nothing is
written.

With --json, prints one object:
  without REPO: {"repositories": ["<name>", ...]}
  with REPO:    {"repository": "<name>",
                 "tags": [{"tag": "<tag>", "digest": "<digest>",
                           "mediaType": "<type>", "size": <bytes>,
                           "pushed": "<RFC 3339 time>",
                           "error": "<why it does not resolve>"}, ...]}
A tag that does not resolve has "error" and only the fields that are known.`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			s, closeStore, err := inv.openStore(inv.args[0], false)
			if err != nil {
				return err
			}
			defer closeStore()
			if len(inv.args) == 1 {
				out := lsReposOutput{Repositories: []string{}}
				for r, err := range s.Repositories() {
					if err != nil {
						return err
					}
					if err := ctx.Err(); err != nil {
						return err
					}
					out.Repositories = append(out.Repositories, r.Name())
				}
				if *asJSON {
					return writeJSON(inv.stdout, out)
				}
				ew := &errWriter{w: inv.stdout}
				for _, name := range out.Repositories {
					ew.printf("%s\n", name)
				}
				return ew.err
			}
			r, err := existingRepository(s, inv.args[1])
			if err != nil {
				return err
			}
			out := lsTagsOutput{Repository: r.Name(), Tags: []lsTag{}}
			for t, err := range r.Tags() {
				if err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				out.Tags = append(out.Tags, describeTag(s, r, t))
			}
			if *asJSON {
				return writeJSON(inv.stdout, out)
			}
			return printTags(inv.stdout, &out)
		}
	},
}

type lsReposOutput struct {
	Repositories []string `json:"repositories"`
}

type lsTagsOutput struct {
	Repository string  `json:"repository"`
	Tags       []lsTag `json:"tags"`
}

type lsTag struct {
	Tag       string        `json:"tag"`
	Digest    digest.Digest `json:"digest,omitempty"`
	MediaType string        `json:"mediaType,omitempty"`
	Size      int64         `json:"size,omitempty"`
	Pushed    *time.Time    `json:"pushed,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// existingRepository is the repository named name, which must exist.
func existingRepository(s *regstore.Store, name string) (*regstore.Repository, error) {
	r, err := s.Repository(name)
	if err != nil {
		return nil, err
	}
	ok, err := r.Exists()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &regstore.Error{Op: "open repository", Repository: name, Err: fs.ErrNotExist}
	}
	return r, nil
}

// describeTag resolves one tag for ls.
func describeTag(s *regstore.Store, r *regstore.Repository, t *regstore.Tag) lsTag {
	out := lsTag{Tag: t.Name()}
	if fi, err := fs.Stat(s.FS(), s.Layout().TagCurrent(r.Name(), t.Name())); err == nil {
		mt := fi.ModTime().UTC()
		out.Pushed = &mt
	}
	d, err := t.Digest()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Digest = d
	m, err := t.Resolve()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.MediaType = m.MediaType()
	out.Size = imageSize(r, m, map[digest.Digest]bool{})
	return out
}

// imageSize is the manifest's size plus what it references, as its
// descriptors say: config and layers, and for an index each child image
// (read from the repository; a child that cannot be read counts its
// descriptor's size only). Each digest counts once.
func imageSize(r *regstore.Repository, m *regstore.Manifest, seen map[digest.Digest]bool) int64 {
	if seen[m.Digest()] {
		return 0
	}
	seen[m.Digest()] = true
	n := m.Size()
	for b := range m.Blobs() {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			n += b.Size
		}
	}
	for _, c := range m.Children() {
		child, err := r.Manifest(c.Digest)
		switch {
		case err == nil:
			n += imageSize(r, child, seen)
		case !seen[c.Digest]:
			seen[c.Digest] = true
			n += c.Size
		}
	}
	return n
}

func printTags(w io.Writer, out *lsTagsOutput) error {
	ew := &errWriter{w: w}
	width := len("TAG")
	for _, t := range out.Tags {
		width = max(width, len(t.Tag))
	}
	ew.printf("%-*s  %-71s  %9s  %s\n", width, "TAG", "DIGEST", "SIZE", "PUSHED")
	for _, t := range out.Tags {
		pushed := "-"
		if t.Pushed != nil {
			pushed = t.Pushed.Format(time.RFC3339)
		}
		if t.Error != "" {
			d := string(t.Digest)
			if d == "" {
				d = "-"
			}
			ew.printf("%-*s  %-71s  %9s  %s  ERROR: %s\n", width, t.Tag, d, "-", pushed, t.Error)
			continue
		}
		ew.printf("%-*s  %-71s  %9s  %s\n", width, t.Tag, t.Digest, shortBytes(t.Size), pushed)
	}
	return ew.err
}

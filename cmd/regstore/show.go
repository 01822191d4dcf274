package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

var manifestCommand = &command{
	name:     "manifest",
	synopsis: "manifest [--json] ROOT REPO:TAG|REPO@DIGEST",
	args:     "ROOT and REPO:TAG or REPO@DIGEST", min: 2, max: 2,
	help: `
Prints a manifest exactly as stored (the bytes a registry serves, which hash
to its digest), resolving a tag as a pull does. Nothing is written.

With --json, prints one object instead:
  {"repository": "<name>", "tag": "<tag>", "digest": "<digest>",
   "mediaType": "<type>", "size": <bytes>, "manifest": <the manifest>}
(tag only when one was given); manifest is the stored JSON, as it is.`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			ref, err := parseRef(inv.args[1])
			if err != nil {
				return usagef("%v", err)
			}
			if ref.tag == "" && ref.digest == "" {
				return usagef("%s: want REPO:TAG or REPO@DIGEST", ref.arg)
			}
			s, closeStore, err := inv.openStore(inv.args[0], false)
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := s.Repository(ref.repo)
			if err != nil {
				return err
			}
			var m *regstore.Manifest
			if ref.tag != "" {
				t, err := r.Tag(ref.tag)
				if err != nil {
					return err
				}
				if m, err = t.Resolve(); err != nil {
					return err
				}
			} else if m, err = r.Manifest(ref.digest); err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(inv.stdout, manifestJSON{Repository: r.Name(), Tag: ref.tag, Digest: m.Digest(),
					MediaType: m.MediaType(), Size: m.Size(), Manifest: json.RawMessage(m.Bytes())})
			}
			_, err = inv.stdout.Write(m.Bytes())
			return err
		}
	},
}

type manifestJSON struct {
	Repository string          `json:"repository"`
	Tag        string          `json:"tag,omitempty"`
	Digest     digest.Digest   `json:"digest"`
	MediaType  string          `json:"mediaType"`
	Size       int64           `json:"size"`
	Manifest   json.RawMessage `json:"manifest"`
}

var blobCommand = &command{
	name:     "blob",
	synopsis: "blob [--json] ROOT DIGEST|REPO@DIGEST",
	args:     "ROOT and DIGEST or REPO@DIGEST", min: 2, max: 2,
	help: `
Writes a blob's data to standard output. With DIGEST, any blob of the store;
with REPO@DIGEST, only a blob the repository holds (linked in it, as a pull
from it requires). The data is verified against its digest while it is
written: on a mismatch the command fails after the data (exit status 2).
Nothing is written to the tree.

With --json, prints what is known of the blob instead of its data:
  {"digest": "<digest>", "size": <bytes>, "path": "<data file below ROOT>",
   "repository": "<name>"}
(repository only when one was given).`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON instead of the data")
		return func(ctx context.Context, inv *invocation) error {
			arg := inv.args[1]
			var repo string
			d := digest.Digest(arg)
			if i := strings.IndexByte(arg, '@'); i >= 0 {
				repo, d = arg[:i], digest.Digest(arg[i+1:])
				if err := regstore.ValidateName(repo); err != nil {
					return usagef("%s: %v", arg, err)
				}
			}
			if err := regstore.ValidateDigest(d); err != nil {
				return usagef("%s: %v", arg, err)
			}
			s, closeStore, err := inv.openStore(inv.args[0], false)
			if err != nil {
				return err
			}
			defer closeStore()
			var b *regstore.Blob
			if repo != "" {
				r, err := s.Repository(repo)
				if err != nil {
					return err
				}
				b, err = r.Blob(d)
				if err != nil {
					return err
				}
			} else if b, err = s.Blob(d); err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(inv.stdout, blobJSON{Digest: b.Digest(), Size: b.Size(), Path: b.Path(), Repository: repo})
			}
			return copyBlob(ctx, inv.stdout, b)
		}
	},
}

type blobJSON struct {
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	Path       string        `json:"path"`
	Repository string        `json:"repository,omitempty"`
}

// copyBlob writes b's data to w, verifying it on the way.
func copyBlob(ctx context.Context, w io.Writer, b *regstore.Blob) error {
	f, err := b.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	v := b.Digest().Verifier()
	n, err := io.Copy(io.MultiWriter(w, v), ctxReader{ctx, f})
	if err != nil {
		return err
	}
	if n != b.Size() {
		return &regstore.Error{Op: "read blob", Reference: string(b.Digest()), Path: b.Path(),
			Err: fmt.Errorf("%w: read %d bytes, want %d", regstore.ErrSizeMismatch, n, b.Size())}
	}
	if !v.Verified() {
		return &regstore.Error{Op: "read blob", Reference: string(b.Digest()), Path: b.Path(),
			Err: fmt.Errorf("%w: the data does not hash to its digest (regstore check finds it)", regstore.ErrDigestMismatch)}
	}
	return nil
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

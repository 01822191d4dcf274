package regstoretest

// Broken states. Each function below damages a tree the way real trees get
// damaged (a crash between two writes, a disk error, a tool that wrote the
// layout by hand), writing straight through the store's backend
// (s.FS().(regstore.WriteFS)) at paths from s.Layout(), never through the
// regstore API, which refuses to make such states. Each documents what
// [check.Problems] then reports, so tests of checking and repairing
// tools can say exactly what they expect.
//
// Functions that act on a link take the repository and a ref: a tag names
// the tag's current link; a digest names the repository's _layers link for
// it when there is one, and its revision link otherwise.

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// writer is the store's write side.
func writer(s *regstore.Store) (regstore.WriteFS, error) {
	w, ok := s.FS().(regstore.WriteFS)
	if !ok {
		return nil, fmt.Errorf("regstoretest: backend %T is read-only: %w", s.FS(), errors.ErrUnsupported)
	}
	return w, nil
}

// put publishes data at name through the backend.
func put(s *regstore.Store, name string, data []byte) error {
	w, err := writer(s)
	if err != nil {
		return err
	}
	fw, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := fw.Write(data); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	return fw.Commit()
}

// remove deletes the file name through the backend.
func remove(s *regstore.Store, name string) error {
	w, err := writer(s)
	if err != nil {
		return err
	}
	return w.Remove(name)
}

// LinkPath is the path of the link that ref names in repository repo: the
// tag's current link for a tag; for a digest, the _layers link when the
// repository has one and the revision link otherwise. The link need not
// exist when ref is a tag.
func LinkPath(s *regstore.Store, repo, ref string) (string, error) {
	l := s.Layout()
	if err := regstore.ValidateName(repo); err != nil {
		return "", err
	}
	d := digest.Digest(ref)
	if d.Validate() != nil {
		if err := regstore.ValidateTag(ref); err != nil {
			return "", fmt.Errorf("regstoretest: %q is neither a digest nor a tag", ref)
		}
		return l.TagCurrent(repo, ref), nil
	}
	if p := l.LayerLink(repo, d); exists(s, p) {
		return p, nil
	}
	return l.RevisionLink(repo, d), nil
}

func exists(s *regstore.Store, p string) bool {
	_, err := fs.Stat(s.FS(), p)
	return err == nil
}

// readTarget reads the link ref names and returns the digest it holds.
func readTarget(s *regstore.Store, repo, ref string) (string, digest.Digest, error) {
	p, err := LinkPath(s, repo, ref)
	if err != nil {
		return "", "", err
	}
	b, err := fs.ReadFile(s.FS(), p)
	if err != nil {
		return p, "", err
	}
	d, err := regstore.ParseLink(b)
	return p, d, err
}

// DanglingLink removes the blob data behind the link ref names, keeping the
// link, as a lost write or a careless cleanup does. For a layer, Check
// reports blob-missing for every link to it, and reference-missing for every
// manifest that uses it; for a manifest (a tag or a revision digest),
// blob-missing for its revision link and for each tag whose current link
// names it. The registry answers "unknown" for all of them.
func DanglingLink(s *regstore.Store, repo, ref string) error {
	_, target, err := readTarget(s, repo, ref)
	if err != nil {
		return err
	}
	return remove(s, s.Layout().BlobData(target))
}

// writeLinkBytes replaces the content of the link ref names.
func writeLinkBytes(s *regstore.Store, repo, ref string, content func(old []byte) []byte) error {
	p, err := LinkPath(s, repo, ref)
	if err != nil {
		return err
	}
	old, err := fs.ReadFile(s.FS(), p)
	if err != nil {
		return err
	}
	return put(s, p, content(old))
}

// EmptyLink truncates the link ref names to zero bytes, which is what a
// crash during a non-atomic write (registry 3.0 and older) leaves. Check
// reports link-empty. (A damaged _layers or revision link also makes the
// manifests that need it report reference-unlinked.)
func EmptyLink(s *regstore.Store, repo, ref string) error {
	return writeLinkBytes(s, repo, ref, func([]byte) []byte { return nil })
}

// NewlineLink appends "\n" to the link ref names, as a hand-written or
// script-written link often has. The registry answers it with a server
// error. Check reports link-trailing-bytes.
func NewlineLink(s *regstore.Store, repo, ref string) error {
	return writeLinkBytes(s, repo, ref, func(old []byte) []byte { return append(bytes.Clone(old), '\n') })
}

// UnknownAlgorithmLink replaces the link ref names with a well-formed
// digest of an algorithm the registry does not know
// ("md5:<32 hex characters>"). Check reports link-unknown-algorithm.
func UnknownAlgorithmLink(s *regstore.Store, repo, ref string) error {
	return writeLinkBytes(s, repo, ref, func(old []byte) []byte {
		return fmt.Appendf(nil, "md5:%x", sha256.Sum256(old))[:4+32]
	})
}

// GarbageLink replaces the link ref names with bytes that are no digest at
// all. Check reports link-unparsable.
func GarbageLink(s *regstore.Store, repo, ref string) error {
	return writeLinkBytes(s, repo, ref, func([]byte) []byte { return []byte("\x00garbage, not a digest\xff") })
}

// CorruptBlob overwrites blob d's data with other bytes of the same length
// (every byte inverted; an empty blob gets a few bytes), as bit rot or a
// bad copy does. Check reports blob-corrupt when it re-hashes, and nothing
// in links-only mode.
func CorruptBlob(s *regstore.Store, d digest.Digest) error {
	if err := regstore.ValidateDigest(d); err != nil {
		return err
	}
	p := s.Layout().BlobData(d)
	b, err := fs.ReadFile(s.FS(), p)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		b = []byte("corrupt")
	}
	for i := range b {
		b[i] ^= 0xff
	}
	return put(s, p, b)
}

// HalfWrittenUpload leaves an upload session in repo's _uploads/<id>, as a
// client that started a blob upload and went away does: a data file holding
// some bytes, and the Go sha256 hash states the registry saves, at offset 0
// and at the length of the data. The startedat file holds startedAt (RFC
// 3339, UTC, seconds, as the registry writes it); a zero startedAt writes no
// startedat, so the registry never purges the session. id should be a UUID,
// as the registry's are.
//
// Check reports upload-malformed without startedat, upload-stale when
// startedAt is older than its stale age (168h by default), and nothing for a
// recent upload, which may still be in progress.
func HalfWrittenUpload(s *regstore.Store, repo, id string, startedAt time.Time) error {
	if err := regstore.ValidateName(repo); err != nil {
		return err
	}
	if id == "" || strings.ContainsAny(id, "/.") {
		return fmt.Errorf("regstoretest: invalid upload id %q", id)
	}
	l := s.Layout()
	data := []byte("half-written upload data")
	h := sha256.New()
	state0, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	_, _ = h.Write(data)
	stateN, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	states := l.UploadHashStates(repo, id)
	files := []struct {
		name string
		data []byte
	}{
		{l.UploadData(repo, id), data},
		{path.Join(states, "sha256", "0"), state0},
		{path.Join(states, "sha256", fmt.Sprint(len(data))), stateN},
	}
	if !startedAt.IsZero() {
		files = append(files, struct {
			name string
			data []byte
		}{l.UploadStartedAt(repo, id), []byte(startedAt.UTC().Format(time.RFC3339))})
	}
	for _, f := range files {
		if err := put(s, f.name, f.data); err != nil {
			return err
		}
	}
	return nil
}

// TagWithoutIndexEntry removes, from the index (history) of tag, the entry
// for the manifest its current link names, as a tool that writes current
// links without index entries does. The tag still resolves, but the
// registry's garbage collection with --delete-untagged does not see that
// the tag ever pointed there. Check reports tag-not-in-index.
func TagWithoutIndexEntry(s *regstore.Store, repo, tag string) error {
	if err := regstore.ValidateTag(tag); err != nil {
		return err
	}
	_, target, err := readTarget(s, repo, tag)
	if err != nil {
		return err
	}
	return remove(s, s.Layout().TagIndexLink(repo, tag, target))
}

// TagWithoutManifest removes the revision link of the manifest tag points
// at and keeps the tag, as a delete by digest that stopped half-way does.
// The registry answers pulls of the tag with "manifest unknown". Check
// reports tag-unresolvable (and reference-unlinked for an index that lists
// the manifest as a child).
func TagWithoutManifest(s *regstore.Store, repo, tag string) error {
	if err := regstore.ValidateTag(tag); err != nil {
		return err
	}
	_, target, err := readTarget(s, repo, tag)
	if err != nil {
		return err
	}
	return remove(s, s.Layout().RevisionLink(repo, target))
}

// OrphanBlob stores content as blob data that no link names and no
// manifest references, as an upload committed by a registry that crashed
// before linking it leaves. It returns the blob's digest. Check reports
// blob-orphan.
func OrphanBlob(s *regstore.Store, content []byte) (digest.Digest, error) {
	b, err := s.PutBlob(bytes.NewReader(content), "", -1)
	if err != nil {
		return "", err
	}
	return b.Digest(), nil
}

// UnlinkReference removes from repo the link that makes ref, a blob or a
// child manifest referenced by manifest, visible there: its _layers link
// for a config or layer, its revision link for a child of an index. The
// data stays. The registry then fails pulls of the blob (or child) through
// repo. Check reports reference-unlinked.
func UnlinkReference(s *regstore.Store, repo string, manifest, ref digest.Digest) error {
	r, err := s.Repository(repo)
	if err != nil {
		return err
	}
	m, err := r.Manifest(manifest)
	if err != nil {
		return err
	}
	for b := range m.Blobs() {
		if b.Digest == ref {
			return remove(s, s.Layout().LayerLink(repo, ref))
		}
	}
	for _, c := range m.Children() {
		if c.Digest == ref {
			return remove(s, s.Layout().RevisionLink(repo, ref))
		}
	}
	return fmt.Errorf("regstoretest: manifest %s does not reference %s", manifest, ref)
}

// OversizeManifest stores, in repo, a manifest larger than
// [regstore.MaxManifestSize] (a valid OCI manifest padded with an
// annotation), as its data and revision link, which no registry push can
// make. The registry refuses to read it, and its garbage collection aborts
// on it. It returns the manifest's digest. Check reports manifest-too-large.
func OversizeManifest(s *regstore.Store, repo string) (digest.Digest, error) {
	empty := digest.FromBytes([]byte("{}"))
	raw := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"padding":"%s"}}`,
		regstore.MediaTypeOCIManifest, empty, strings.Repeat("x", regstore.MaxManifestSize))
	return rawManifest(s, repo, raw)
}

// InvalidManifest stores raw in repo as a manifest's data and revision
// link, without checking it: for bytes that are not a manifest the registry
// reads (nil raw stores a JSON object that is none), the registry fails
// pulls of it and its garbage collection aborts on it. It returns the digest
// of raw. Check reports manifest-invalid.
func InvalidManifest(s *regstore.Store, repo string, raw []byte) (digest.Digest, error) {
	if raw == nil {
		raw = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.not-a-manifest"}`)
	}
	return rawManifest(s, repo, raw)
}

// rawManifest stores raw as blob data and writes a revision link to it.
func rawManifest(s *regstore.Store, repo string, raw []byte) (digest.Digest, error) {
	if err := regstore.ValidateName(repo); err != nil {
		return "", err
	}
	b, err := s.PutBlob(bytes.NewReader(raw), "", -1)
	if err != nil {
		return "", err
	}
	return b.Digest(), put(s, s.Layout().RevisionLink(repo, b.Digest()), []byte(b.Digest()))
}

// TempFile leaves a "link.<random>.tmp" file beside the link ref names,
// holding a partial digest, as a registry 3.1+ that crashed between writing
// a link's temporary file and renaming it does. Check reports temp-file.
func TempFile(s *regstore.Store, repo, ref string) error {
	p, err := LinkPath(s, repo, ref)
	if err != nil {
		return err
	}
	return put(s, p+".0b9d8f4e-5c1a-4d7e-9a63-2f1e8c7b6a50.tmp", []byte("sha256:"))
}

// UnknownFile writes content at rel, a path relative to the layout root
// (for example "repositories/a/notes.txt"), that is no part of the layout.
// Check reports unknown-file.
func UnknownFile(s *regstore.Store, rel string, content []byte) error {
	if !fs.ValidPath(rel) || rel == "." {
		return fmt.Errorf("regstoretest: invalid path %q", rel)
	}
	return put(s, path.Join(s.Layout().Root(), rel), content)
}

// InterruptedGC leaves what a garbage collection killed while sweeping
// leaves: the data of blob d moved aside (blobs/.../data.gc) and the
// journal naming it (_gc/aside below the layout root). Check reports
// gc-interrupted for both; the next [gc.Sweep] puts the data
// back before it sweeps.
func InterruptedGC(s *regstore.Store, d digest.Digest) error {
	if err := regstore.ValidateDigest(d); err != nil {
		return err
	}
	data := s.Layout().BlobData(d)
	raw, err := fs.ReadFile(s.FS(), data)
	if err != nil {
		return err
	}
	if err := put(s, path.Join(s.Layout().Root(), "_gc", "aside"), []byte(d.String()+"\n")); err != nil {
		return err
	}
	if err := put(s, data+".gc", raw); err != nil {
		return err
	}
	w, err := writer(s)
	if err != nil {
		return err
	}
	return w.Remove(data)
}

package regstore

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore/internal/walkdepth"
)

// Iterators. Every sequence here re-reads the backend each time it is
// ranged over, yields in a documented order, and ends after yielding its
// first error, as (zero value, error). Changes made to the tree while a
// sequence runs may or may not be seen. Breaking out of a loop stops the
// walk.

// Repositories yields the store's repositories in the order the v3
// registry's catalog lists them on its filesystem driver: a pre-order walk
// of repositories/ with each directory's entries sorted by name, where a
// directory holding _manifests is a repository and directories whose name
// starts with "_" are not entered. A nested repository whose name sorts
// before "_" comes before its parent: a/0, a, a/c, a-b, a.b, b. Directories
// whose name is not a valid repository name ([ValidateName]) and symbolic
// links are skipped; [Store.RepositoryNames] yields every one.
func (s *Store) Repositories() iter.Seq2[*Repository, error] {
	return s.RepositoriesAfter("")
}

// RepositoriesAfter yields the repositories that come after last in the
// order of [Store.Repositories] (all of them when last is ""), whether or
// not last itself exists. Unlike the registry's own paging, no repository
// is skipped at a page boundary.
func (s *Store) RepositoriesAfter(last string) iter.Seq2[*Repository, error] {
	return func(yield func(*Repository, error) bool) {
		s.repositoryDirs(last, false, func(name string, err error) bool {
			if err != nil {
				return yield(nil, err)
			}
			if ValidateName(name) != nil {
				return true
			}
			return yield(&Repository{s: s, name: name}, nil)
		})
	}
}

// RepositoryNames yields the name of every directory below repositories/
// that holds _manifests, whatever the name, in the order of
// [Store.Repositories]: the registry's catalog and its garbage collector
// discover repositories this way and validate no name. A name that fails
// [ValidateName] gets no [Repository] handle; tools that remove data keep
// what such a repository references ([Layout] builds its paths), and
// integrity checks report it. A symbolic link met below repositories/ (the
// registry would follow it) ends the sequence with an error wrapping
// [ErrSymlink].
func (s *Store) RepositoryNames() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		s.repositoryDirs("", true, yield)
	}
}

// repositoryDirs walks repositories/ for directories holding _manifests.
// With strict, a symbolic link is an error; otherwise it is skipped.
func (s *Store) repositoryDirs(last string, strict bool, yield func(string, error) bool) {
	lastKey := repoKey(last)
	root := s.layout.Repositories()
	var walk func(dir string, comps []string) bool
	walk = func(dir string, comps []string) bool {
		entries, err := fs.ReadDir(s.fsys, dir)
		if err != nil {
			if dir == root && errors.Is(err, fs.ErrNotExist) {
				return true
			}
			yield("", &Error{Op: "list repositories", Path: dir, Err: err})
			return false
		}
		for _, e := range entries {
			name := e.Name()
			key := append(comps[:len(comps):len(comps)], name)
			// Skip what sorts before last, subtree and all.
			if last != "" && compareNameKeys(key, lastKey[:min(len(key), len(lastKey))]) < 0 {
				continue
			}
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				if strict {
					p := path.Join(dir, name)
					yield("", &Error{Op: "list repositories", Path: p, Err: fmt.Errorf("%w: %s", ErrSymlink, p)})
					return false
				}
			case name == "_manifests":
				if comps == nil || last != "" && compareNameKeys(key, lastKey) <= 0 {
					continue
				}
				if !yield(strings.Join(comps, "/"), nil) {
					return false
				}
			case strings.HasPrefix(name, "_") || !e.IsDir():
			default:
				if !walk(path.Join(dir, name), key) {
					return false
				}
			}
		}
		return true
	}
	walk(root, nil)
}

// repoKey is the position of repository name in walk order: its components
// followed by the _manifests marker.
func repoKey(name string) []string {
	if name == "" {
		return nil
	}
	return append(strings.Split(name, "/"), "_manifests")
}

// CompareNames orders repository names as [Store.Repositories] yields
// them (the v3 registry's catalog order): component by component, a name
// before the names below it only when its own components sort first.
func CompareNames(a, b string) int { return compareNameKeys(repoKey(a), repoKey(b)) }

// compareNameKeys compares paths component by component, as a sorted pre-order
// walk visits them.
func compareNameKeys(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// Catalog returns at most n repository names after last, in the order of
// [Store.Repositories], as one page of the registry's /v2/_catalog. n <= 0
// means no limit.
func (s *Store) Catalog(n int, last string) ([]string, error) {
	var out []string
	for r, err := range s.RepositoriesAfter(last) {
		if err != nil {
			return out, err
		}
		out = append(out, r.Name())
		if n > 0 && len(out) == n {
			break
		}
	}
	return out, nil
}

// Blobs yields the digest of every blob data file in the store, in
// lexical order of their paths: blobs/<alg>/<hex[:2]>/<hex>/data. Data
// files whose path does not name a valid digest are skipped.
func (s *Store) Blobs() iter.Seq2[digest.Digest, error] {
	return func(yield func(digest.Digest, error) bool) {
		for b, err := range s.BlobFiles() {
			if !yield(b.Digest, err) {
				return
			}
		}
	}
}

// BlobFile is a blob data file found by [Store.BlobFiles].
type BlobFile struct {
	Digest digest.Digest // the canonical digest its path names
	Info   fs.FileInfo   // from the listing; its Sys may offer [ContentMD5]
}

// BlobFiles is [Store.Blobs] with each data file's FileInfo: one flat
// listing on a [WalkFS] backend, and otherwise a listing down to the
// blobs/<alg>/<hex[:2]>/ directories plus a stat of each data file. It is
// the fast path for tools that need every blob's size or age.
func (s *Store) BlobFiles() iter.Seq2[BlobFile, error] {
	return func(yield func(BlobFile, error) bool) {
		root := s.layout.Blobs()
		var err error
		if _, ok := s.fsys.(WalkFS); ok {
			err = WalkFiles(s.fsys, root, func(p string, fi fs.FileInfo) error {
				d, ok := BlobDigest(strings.TrimPrefix(p, root+"/"))
				if !ok {
					return nil
				}
				if !yield(BlobFile{d, fi}, nil) {
					return fs.SkipAll
				}
				return nil
			})
		} else {
			// A directory tree: list down to blobs/<alg>/<hex2>/ and stat
			// each <hex>/data, without listing <hex>/.
			err = walkdepth.Walk(s.fsys, root, 3, func(rel string) error {
				d, ok := BlobDigest(rel + "/data")
				if !ok {
					return nil
				}
				fi, err := fs.Stat(s.fsys, path.Join(root, rel, "data"))
				if errors.Is(err, fs.ErrNotExist) {
					return nil // an empty blob directory: deleted data
				}
				if err != nil {
					return err
				}
				if fi.IsDir() {
					return nil
				}
				if !yield(BlobFile{d, fi}, nil) {
					return fs.SkipAll
				}
				return nil
			})
		}
		if err != nil {
			yield(BlobFile{}, &Error{Op: "list blobs", Path: root, Err: err})
		}
	}
}

// Manifests yields the digests of the manifests in the repository, as the
// registry's enumeration finds them: each revision link, read, whose target
// data exists, in lexical order of the link paths. Revision directories
// without a link (left by deletes) and links whose data is gone are skipped.
func (r *Repository) Manifests() iter.Seq2[digest.Digest, error] {
	return r.links(r.s.layout.Revisions(r.name), "list manifests", true)
}

// Layers yields the digests of the blobs linked in the repository: each
// _layers link whose target data exists, in lexical order of the link
// paths. The digest yielded is the link's own (its path), which differs from
// the blob's canonical digest for an alias link; [Repository.Blob] resolves
// either.
func (r *Repository) Layers() iter.Seq2[digest.Digest, error] {
	return func(yield func(digest.Digest, error) bool) {
		dir := r.s.layout.Layers(r.name)
		err := WalkLinks(r.s.fsys, dir, func(p string, d digest.Digest) error {
			target, err := ReadLink(r.s.fsys, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := r.s.statBlob(target); errors.Is(err, fs.ErrNotExist) {
				return nil
			} else if err != nil {
				return err
			}
			if !yield(d, nil) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			yield("", r.err("list layers", "", dir, err))
		}
	}
}

// Upload is an upload session left in a repository's _uploads directory:
// the registry removes a session when it completes or is cancelled, so
// these are in progress or abandoned.
type Upload struct {
	Repository *Repository
	ID         string
	// StartedAt is the time in the startedat file, zero when it is
	// missing or unreadable (the registry then never purges the session).
	StartedAt time.Time
	// ModTime is the upload directory's modification time.
	ModTime time.Time
	// Size is the length of the partial data file, 0 when there is none.
	Size int64
}

// Path is the upload session's directory.
func (u *Upload) Path() string { return u.Repository.s.layout.Upload(u.Repository.name, u.ID) }

// Uploads yields the repository's upload sessions in lexical order of their
// ids.
func (r *Repository) Uploads() iter.Seq2[*Upload, error] {
	return func(yield func(*Upload, error) bool) {
		dir := r.s.layout.Uploads(r.name)
		entries, err := fs.ReadDir(r.s.fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(nil, r.err("list uploads", "", dir, err))
			return
		}
		for _, e := range entries {
			if !e.IsDir() || validateUploadID(e.Name()) != nil {
				continue
			}
			u, err := r.upload(e)
			if errors.Is(err, fs.ErrNotExist) {
				continue // completed or cancelled meanwhile
			}
			if err != nil {
				yield(nil, r.err("list uploads", "", path.Join(dir, e.Name()), err))
				return
			}
			if !yield(u, nil) {
				return
			}
		}
	}
}

func (r *Repository) upload(e fs.DirEntry) (*Upload, error) {
	u := &Upload{Repository: r, ID: e.Name()}
	fi, err := e.Info()
	if err != nil {
		return nil, err
	}
	u.ModTime = fi.ModTime()
	// startedat holds one RFC 3339 time: a link's bound is ample.
	if b, err := ReadFileMax(r.s.fsys, r.s.layout.UploadStartedAt(r.name, u.ID), MaxLinkSize); err == nil {
		if t, err := time.Parse(time.RFC3339, string(b)); err == nil {
			u.StartedAt = t
		}
	}
	if fi, err := fs.Stat(r.s.fsys, r.s.layout.UploadData(r.name, u.ID)); err == nil {
		u.Size = fi.Size()
	}
	return u, nil
}

// EntryKind classifies a file of the layout.
type EntryKind int

// The kinds of [Entry].
const (
	BlobData       EntryKind = iota + 1 // blobs/<alg>/<hex2>/<hex>/data
	LayerLink                           // <repo>/_layers/<alg>/<hex>/link
	RevisionLink                        // <repo>/_manifests/revisions/<alg>/<hex>/link
	TagCurrentLink                      // <repo>/_manifests/tags/<tag>/current/link
	TagIndexLink                        // <repo>/_manifests/tags/<tag>/index/<alg>/<hex>/link
	SignatureLink                       // registry 2.4 and older: .../revisions/<alg>/<hex>/signatures/<alg>/<hex>/link
	UploadDir                           // <repo>/_uploads/<id>, a directory
	TempFile                            // *.tmp, left by an interrupted write
	UnknownFile                         // anything else
	Quarantined                         // below _quarantine/, moved aside by Repair
	GCLeftover                          // blobs/.../data.gc or a journal _gc/aside[-<run>], left by an interrupted gc.Sweep
)

var kindNames = [...]string{"", "blob data", "layer link", "revision link", "tag current link",
	"tag index link", "signature link", "upload", "temporary file", "unknown file", "quarantined file", "gc leftover"}

// isLink reports whether k is one of the link kinds.
func (k EntryKind) isLink() bool {
	switch k {
	case LayerLink, RevisionLink, SignatureLink, TagCurrentLink, TagIndexLink:
		return true
	}
	return false
}

// String is the kind's name, as Check and inspect print it.
func (k EntryKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid kind"
}

// Entry is one file (or upload directory) of the layout, classified by its
// path alone; nothing is read.
type Entry struct {
	Kind       EntryKind
	Path       string        // backend path
	Repository string        // for repository entries; may be an invalid name
	Tag        string        // for tag links
	Digest     digest.Digest // from the path, for data and links; "" if the path names no valid digest
	Info       fs.FileInfo
}

// Walk yields every file of the layout (and each upload session directory,
// whose contents are not entered, and each directory where a link file
// belongs, with its directory FileInfo, not entered either), classified, in lexical pre-order
// ([fs.WalkDir] order; key byte order on a [WalkFS] backend, which has no
// empty directories). It is the whole-tree view integrity tools start from.
func (s *Store) Walk() iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		root := s.layout.Root()
		var err error
		if _, ok := s.fsys.(WalkFS); ok {
			err = s.walkFlat(root, yield)
		} else {
			err = s.walkDirs(root, yield)
		}
		if err != nil && err != fs.SkipAll {
			yield(Entry{}, &Error{Op: "walk", Path: root, Err: err})
		}
	}
}

func (s *Store) walkDirs(root string, yield func(Entry, error) bool) error {
	return fs.WalkDir(s.fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p == root {
			return nil
		}
		rel := strings.TrimPrefix(p, root+"/")
		e := classify(rel, d.IsDir())
		if d.IsDir() && e.Kind == 0 {
			// A directory where a link file belongs is yielded as that
			// link, with its directory FileInfo: the registry fails on
			// it, and integrity tools must see it.
			if f := classify(rel, false); f.Kind.isLink() {
				e = f
			}
		}
		if e.Kind == 0 {
			return nil // a directory to enter
		}
		e.Path = p
		if e.Info, err = d.Info(); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !yield(e, nil) {
			return fs.SkipAll
		}
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
}

// walkFlat is Walk over a flat listing: the files of an upload session
// become one UploadDir entry.
func (s *Store) walkFlat(root string, yield func(Entry, error) bool) error {
	lastUpload := ""
	return WalkFiles(s.fsys, root, func(p string, fi fs.FileInfo) error {
		rel := strings.TrimPrefix(p, root+"/")
		if c := strings.Split(rel, "/"); c[0] == "repositories" {
			if i := slicesIndexUnderscore(c); i > 1 && c[i] == "_uploads" && len(c) > i+2 {
				dir := path.Join(root, strings.Join(c[:i+2], "/"))
				if dir == lastUpload {
					return nil
				}
				lastUpload = dir
				info, err := fs.Stat(s.fsys, dir)
				if err != nil {
					info = fi
				}
				if !yield(Entry{Kind: UploadDir, Path: dir, Repository: strings.Join(c[1:i], "/"), Info: info}, nil) {
					return fs.SkipAll
				}
				return nil
			}
		}
		e := classify(rel, false)
		e.Path, e.Info = p, fi
		if !yield(e, nil) {
			return fs.SkipAll
		}
		return nil
	})
}

// Classify names what the backend path p, below the layout root, is: the
// kind of file and the repository, tag and digest its path names. isDir
// says whether p is a directory; a directory's Kind is 0 unless it is an
// upload session. A path outside the layout root gets Kind 0 as well.
func (l Layout) Classify(p string, isDir bool) Entry {
	rel, ok := p, l.root == "."
	if !ok {
		rel, ok = strings.CutPrefix(p, l.root+"/")
	}
	if !ok || rel == "" {
		return Entry{Path: p}
	}
	e := classify(rel, isDir)
	e.Path = p
	return e
}

// classify names what the path rel, relative to the layout root, is. Kind
// 0 means a directory to descend into.
func classify(rel string, dir bool) Entry {
	c := strings.Split(rel, "/")
	if c[0] == QuarantineDir && !dir {
		return Entry{Kind: Quarantined}
	}
	if dir {
		if i := slicesIndexUnderscore(c); c[0] == "repositories" && i > 0 && c[i] == "_uploads" && len(c) == i+2 {
			return Entry{Kind: UploadDir, Repository: strings.Join(c[1:i], "/")}
		}
		return Entry{}
	}
	if strings.HasSuffix(rel, ".tmp") {
		return Entry{Kind: TempFile}
	}
	if isGCJournal(rel) {
		return Entry{Kind: GCLeftover}
	}
	if c[0] == "blobs" {
		if d, ok := BlobDigest(strings.TrimPrefix(rel, "blobs/")); ok {
			return Entry{Kind: BlobData, Digest: d}
		}
		if d, ok := BlobDigest(strings.TrimPrefix(strings.TrimSuffix(rel, asideSuffix), "blobs/")); ok {
			return Entry{Kind: GCLeftover, Digest: d}
		}
		return Entry{Kind: UnknownFile}
	}
	i := slicesIndexUnderscore(c)
	if c[0] != "repositories" || i <= 1 {
		return Entry{Kind: UnknownFile}
	}
	e := Entry{Kind: UnknownFile, Repository: strings.Join(c[1:i], "/")}
	r := c[i:]
	linkDigest := func(alg, hex string) digest.Digest {
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if ValidateDigest(d) != nil {
			return ""
		}
		return d
	}
	switch {
	case len(r) == 4 && r[0] == "_layers" && r[3] == "link":
		e.Kind, e.Digest = LayerLink, linkDigest(r[1], r[2])
	case len(r) == 5 && r[0] == "_manifests" && r[1] == "revisions" && r[4] == "link":
		e.Kind, e.Digest = RevisionLink, linkDigest(r[2], r[3])
	case len(r) == 8 && r[0] == "_manifests" && r[1] == "revisions" && r[4] == "signatures" && r[7] == "link":
		e.Kind, e.Digest = SignatureLink, linkDigest(r[5], r[6])
	case len(r) == 5 && r[0] == "_manifests" && r[1] == "tags" && r[3] == "current" && r[4] == "link":
		e.Kind, e.Tag = TagCurrentLink, r[2]
	case len(r) == 7 && r[0] == "_manifests" && r[1] == "tags" && r[3] == "index" && r[6] == "link":
		e.Kind, e.Tag, e.Digest = TagIndexLink, r[2], linkDigest(r[4], r[5])
	}
	return e
}

// slicesIndexUnderscore is the index of the first component that starts
// with "_", or -1.
func slicesIndexUnderscore(c []string) int {
	for i, s := range c {
		if strings.HasPrefix(s, "_") {
			return i
		}
	}
	return -1
}

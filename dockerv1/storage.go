package dockerv1

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/regstore/regstore"
)

// Storage is a v1 storage tree: the folder holding images/ and
// repositories/ on a read-only fs.FS. It keeps no state besides the two, so
// every method reads the backend again.
type Storage struct {
	fsys fs.FS
	dir  string
}

// Open returns the v1 tree at dir of fsys ("." for the root of fsys). It
// fails with an error wrapping fs.ErrNotExist when dir holds neither
// images/ nor repositories/, and fs.ErrInvalid when dir is not a valid
// fs.ValidPath.
func Open(fsys fs.FS, dir string) (*Storage, error) {
	if dir == "" {
		dir = "."
	}
	dir = strings.TrimSuffix(dir, "/")
	if !fs.ValidPath(dir) {
		return nil, &fs.PathError{Op: "open v1 storage", Path: dir, Err: fs.ErrInvalid}
	}
	s := &Storage{fsys: fsys, dir: dir}
	_, errI := fs.Stat(fsys, s.path("images"))
	_, errR := fs.Stat(fsys, s.path("repositories"))
	if errI != nil && errR != nil {
		return nil, fmt.Errorf("open v1 storage %s: no images/ or repositories/: %w", dir, errors.Join(errI, errR))
	}
	return s, nil
}

// FS is the backend the tree is read from.
func (s *Storage) FS() fs.FS { return s.fsys }

func (s *Storage) path(elem ...string) string {
	return path.Join(append([]string{s.dir}, elem...)...)
}

var idPattern = regexp.MustCompile(`^([a-f0-9]{16}|[a-f0-9]{64})$`)

// ValidID reports whether id is a v1 image id as docker-registry accepts
// one: 64 lower-case hex characters, or 16 for the oldest images.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Repository is one v1 repository: repositories/<namespace>/<repository>/.
type Repository struct {
	s *Storage
	// Namespace is the first component ("library" for one-component names).
	Namespace string
	// Name is the repository component, URL-unescaped as docker-registry
	// escaped it on disk (quote_plus: "a/b" is stored as "a%2Fb").
	Name string
	dir  string // the on-disk name of the repository component
}

// FullName is "namespace/name", the name docker-registry was given (with
// "library/" for a one-component name).
func (r *Repository) FullName() string { return r.Namespace + "/" + r.Name }

// String is the repository's full v1 name (namespace/repository).
func (r *Repository) String() string { return r.FullName() }

func (r *Repository) path(elem ...string) string {
	return r.s.path(append([]string{"repositories", r.Namespace, r.dir}, elem...)...)
}

// Private reports whether the repository was marked private (_private).
func (r *Repository) Private() (bool, error) {
	_, err := fs.Stat(r.s.fsys, r.path("_private"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Repositories yields every repository, by namespace and then repository
// directory, in lexical order. A missing repositories/ folder yields
// nothing. On an error it yields (nil, err) once and stops. It is
// re-walkable: each range reads the backend again.
func (s *Storage) Repositories() iter.Seq2[*Repository, error] {
	return func(yield func(*Repository, error) bool) {
		nss, err := fs.ReadDir(s.fsys, s.path("repositories"))
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		for _, ns := range nss {
			if !ns.IsDir() {
				continue
			}
			repos, err := fs.ReadDir(s.fsys, s.path("repositories", ns.Name()))
			if err != nil {
				yield(nil, err)
				return
			}
			for _, rd := range repos {
				if !rd.IsDir() {
					continue
				}
				name, uerr := url.QueryUnescape(rd.Name())
				if uerr != nil {
					name = rd.Name()
				}
				if !yield(&Repository{s: s, Namespace: ns.Name(), Name: name, dir: rd.Name()}, nil) {
					return
				}
			}
		}
	}
}

// Repository returns the repository "namespace/name" (a one-component
// name is in "library"). It does not check that it exists. A name that
// is not one or two path elements (after the namespace, "/" is kept in the
// repository component, which is stored escaped) is an error wrapping
// fs.ErrInvalid.
func (s *Storage) Repository(name string) (*Repository, error) {
	ns, repo, ok := strings.Cut(name, "/")
	if !ok {
		ns, repo = "library", name
	}
	dir := url.QueryEscape(repo)
	if !validElem(ns) || !validElem(dir) {
		return nil, &fs.PathError{Op: "v1 repository", Path: name, Err: fs.ErrInvalid}
	}
	return &Repository{s: s, Namespace: ns, Name: repo, dir: dir}, nil
}

// validElem reports whether e is one path element.
func validElem(e string) bool {
	return e != "" && e != "." && e != ".." && !strings.Contains(e, "/") && fs.ValidPath(e)
}

// Tag is one tag of a repository: the file tag_<name> holding the image
// id, and tag<name>_json holding its push metadata.
type Tag struct {
	Repository *Repository
	Name       string
	// ImageID is the content of tag_<name> (the raw id, no quotes).
	ImageID string
	// LastUpdate is "last_update" of tag<name>_json, the time of the push
	// (zero when there is no such file or field).
	LastUpdate time.Time
	// ModTime is the modification time of tag_<name> as the backend
	// reports it (zero when unknown).
	ModTime time.Time
}

// Time is when the tag was pushed: LastUpdate, else ModTime.
func (t *Tag) Time() time.Time {
	if !t.LastUpdate.IsZero() {
		return t.LastUpdate
	}
	return t.ModTime
}

// Tags yields the repository's tags in lexical order. A missing repository
// yields nothing. On an error it yields (nil, err) once and stops.
func (r *Repository) Tags() iter.Seq2[*Tag, error] {
	return func(yield func(*Tag, error) bool) {
		ents, err := fs.ReadDir(r.s.fsys, r.path())
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), "tag_")
			if !ok || e.IsDir() {
				continue
			}
			t, err := r.readTag(name)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

// Tag reads tag name. A missing tag is an error wrapping fs.ErrNotExist,
// a name that is not one path element one wrapping fs.ErrInvalid.
func (r *Repository) Tag(name string) (*Tag, error) {
	if !validElem("tag_" + name) {
		return nil, &fs.PathError{Op: "v1 tag", Path: name, Err: fs.ErrInvalid}
	}
	return r.readTag(name)
}

func (r *Repository) readTag(name string) (*Tag, error) {
	p := r.path("tag_" + name)
	b, err := readMeta(r.s.fsys, p)
	if err != nil {
		return nil, err
	}
	// The raw id; tolerate a newline or JSON quotes around it.
	t := &Tag{Repository: r, Name: name, ImageID: strings.Trim(strings.TrimSpace(string(b)), `"`)}
	if fi, err := fs.Stat(r.s.fsys, p); err == nil {
		t.ModTime = fi.ModTime()
	}
	jb, err := readMeta(r.s.fsys, r.path("tag"+name+"_json"))
	switch {
	case err == nil:
		var meta struct {
			LastUpdate *json.Number `json:"last_update"`
		}
		if json.Unmarshal(jb, &meta) == nil && meta.LastUpdate != nil {
			if f, err := meta.LastUpdate.Float64(); err == nil && f > 0 {
				sec := int64(f)
				t.LastUpdate = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return t, nil
}

// Image is one v1 image: images/<id>/ with json, layer, ancestry,
// _checksum and, while its push is unfinished, _inprogress.
type Image struct {
	ID string
	// JSON is the json file, byte for byte (the checksum covers it).
	JSON []byte
	// Parent is the json's "parent" ("" for a base image).
	Parent string
	// Ancestry is the ancestry file: the image first, then its parent, and
	// so on to the base image. Nil when the file is missing.
	Ancestry []string
	// Checksums are the _checksum entries ("sha256:<hex>" over the json, a
	// newline and the layer; "tarsum+sha256:<hex>" from pre-0.10 clients).
	// The file is a JSON list, or in the oldest trees one bare string.
	// Nil when the file is missing.
	Checksums []string
	// InProgress reports an _inprogress marker: the push never finished.
	InProgress bool
	// LayerSize is the size of the layer file, -1 when it is missing.
	LayerSize int64

	bareChecksum bool // _checksum is the oldest, bare-string form
}

// ErrInvalidImage is wrapped by the errors about an image whose files do
// not parse. It wraps fs.ErrInvalid.
var ErrInvalidImage = fmt.Errorf("invalid v1 image: %w", fs.ErrInvalid)

// Image reads image id. A missing image (no json) is an error wrapping
// fs.ErrNotExist; an invalid id or json one wrapping ErrInvalidImage.
func (s *Storage) Image(id string) (*Image, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("image %q: %w: not a 16- or 64-hex id", id, ErrInvalidImage)
	}
	b, err := readMeta(s.fsys, s.path("images", id, "json"))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	img := &Image{ID: id, JSON: b, LayerSize: -1}
	var meta struct {
		ID     string `json:"id"`
		Parent string `json:"parent"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("image %s: json: %w: %v", id, ErrInvalidImage, err)
	}
	if meta.ID != id {
		return nil, fmt.Errorf("image %s: json: %w: id is %q", id, ErrInvalidImage, meta.ID)
	}
	if meta.Parent != "" && !ValidID(meta.Parent) {
		return nil, fmt.Errorf("image %s: json: %w: parent %q", id, ErrInvalidImage, meta.Parent)
	}
	img.Parent = meta.Parent
	if ab, err := readMeta(s.fsys, s.path("images", id, "ancestry")); err == nil {
		if err := json.Unmarshal(ab, &img.Ancestry); err != nil || img.Ancestry == nil {
			return nil, fmt.Errorf("image %s: ancestry: %w: not a JSON list of ids", id, ErrInvalidImage)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if cb, err := readMeta(s.fsys, s.path("images", id, "_checksum")); err == nil {
		if json.Unmarshal(cb, &img.Checksums) != nil {
			// The oldest form: one bare string, not JSON.
			img.Checksums = []string{strings.TrimSpace(string(cb))}
			img.bareChecksum = true
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if _, err := fs.Stat(s.fsys, s.path("images", id, "_inprogress")); err == nil {
		img.InProgress = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if fi, err := fs.Stat(s.fsys, s.path("images", id, "layer")); err == nil {
		img.LayerSize = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return img, nil
}

// OpenLayer opens the layer file of image id: its bytes as pushed (a tar,
// or from the earliest clients a gzip, bzip2 or xz compressed tar).
func (s *Storage) OpenLayer(id string) (fs.File, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("image %q: %w: not a 16- or 64-hex id", id, ErrInvalidImage)
	}
	return s.fsys.Open(s.path("images", id, "layer"))
}

// ImageIDs yields the names of images/ that are image ids, in lexical
// order (other names are left out; Check reports them). A missing images/
// folder yields nothing. On an error it yields ("", err) once and stops.
func (s *Storage) ImageIDs() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		ents, err := fs.ReadDir(s.fsys, s.path("images"))
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield("", err)
			return
		}
		for _, e := range ents {
			if e.IsDir() && ValidID(e.Name()) {
				if !yield(e.Name(), nil) {
					return
				}
			}
		}
	}
}

// Images yields every image of images/, in lexical order of id, read with
// Storage.Image. An image that cannot be read is yielded as (nil, err) and
// the walk goes on (the error names the image); an error listing images/
// is yielded once and stops the walk.
func (s *Storage) Images() iter.Seq2[*Image, error] {
	return func(yield func(*Image, error) bool) {
		for id, err := range s.ImageIDs() {
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(s.Image(id)) {
				return
			}
		}
	}
}

// Chain returns the images of id's ancestry, base image first, read and
// checked: every ancestor must exist, be finished and agree with its
// child's json. When the ancestry file is missing the chain follows the
// json "parent" fields. The error names the first image that fails and
// wraps fs.ErrNotExist (a missing image), ErrUnfinished or
// ErrInvalidImage.
func (s *Storage) Chain(id string) ([]*Image, error) {
	return s.chain(id, nil)
}

// chain is Chain reading images through cache (when not nil), which it
// fills: ancestors shared by many tags are read once.
func (s *Storage) chain(id string, cache map[string]*Image) ([]*Image, error) {
	read := func(id string) (*Image, error) {
		if img, ok := cache[id]; ok {
			return img, nil
		}
		img, err := s.Image(id)
		if err == nil && cache != nil {
			cache[id] = img
		}
		return img, err
	}
	top, err := read(id)
	if err != nil {
		return nil, err
	}
	ids := top.Ancestry
	if ids != nil && (len(ids) == 0 || ids[0] != id) {
		return nil, fmt.Errorf("image %s: ancestry: %w: does not start with the image", id, ErrInvalidImage)
	}
	var chain []*Image
	seen := map[string]bool{}
	img := top
	for i := 0; ; i++ {
		if img.InProgress {
			return nil, fmt.Errorf("image %s: %w", img.ID, ErrUnfinished)
		}
		if seen[img.ID] {
			return nil, fmt.Errorf("image %s: %w: parent cycle", img.ID, ErrInvalidImage)
		}
		seen[img.ID] = true
		chain = append(chain, img)
		if ids != nil && (i+1 < len(ids)) != (img.Parent != "") {
			return nil, fmt.Errorf("image %s: %w: ancestry of %s disagrees with parent %q", img.ID, ErrInvalidImage, id, img.Parent)
		}
		if img.Parent == "" {
			break
		}
		if ids != nil && ids[i+1] != img.Parent {
			return nil, fmt.Errorf("image %s: %w: ancestry of %s names %s, json parent is %s", img.ID, ErrInvalidImage, id, ids[i+1], img.Parent)
		}
		parent, err := read(img.Parent)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("image %s: ancestor %s: %w", id, img.Parent, ErrMissingAncestor)
			}
			return nil, err
		}
		img = parent
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// Errors about the structure of a v1 tree.
var (
	// ErrUnfinished: the image's push never finished (_inprogress).
	ErrUnfinished = errors.New("unfinished push (_inprogress)")
	// ErrMissingAncestor wraps fs.ErrNotExist.
	ErrMissingAncestor = fmt.Errorf("missing ancestor: %w", fs.ErrNotExist)
	// ErrChecksumMismatch: the layer does not hash to its _checksum.
	ErrChecksumMismatch = errors.New("checksum mismatch")
)

// maxMeta bounds what is read of a v1 metadata file (a tag, an image's
// json, ancestry or _checksum): the largest docker ever wrote are image
// json files of some kilobytes, and a longer one is not read whole.
const maxMeta = 8 << 20

// readMeta reads the metadata file name, refusing one longer than maxMeta
// (an error wrapping ErrInvalidImage) or one that is not a regular file.
func readMeta(fsys fs.FS, name string) ([]byte, error) {
	if fi, err := fs.Stat(fsys, name); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", name, regstore.ErrNotRegular)
	}
	b, err := regstore.ReadFileMax(fsys, name, maxMeta)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMeta {
		return nil, fmt.Errorf("%s: %w: longer than %d bytes", name, ErrInvalidImage, maxMeta)
	}
	return b, nil
}

package regstore

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// DefaultLayoutRoot is the path, below the registry's rootdirectory, of the
// v2 layout. The registry cannot be configured to use another.
const DefaultLayoutRoot = "docker/registry/v2"

// MaxNameLength bounds repository names, as the registry does: a name whose
// first component is a host name (see [ValidateName]) may have at most
// MaxNameLength characters after that first component and its slash; any
// other name at most MaxNameLength in total.
const MaxNameLength = 255

// maxComponent is the longest directory name an operating system creates:
// no repository name component can exceed it and still be on disk.
const maxComponent = 255

// Layout builds every path of the v2 storage layout. It is the only place
// in this package that joins path strings. All paths are slash-separated
// and unrooted ([fs.ValidPath]), relative to the backend's root:
//
//	<root>/blobs/<alg>/<hex[:2]>/<hex>/data
//	<root>/repositories/<name>/_layers/<alg>/<hex>/link
//	<root>/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//	<root>/repositories/<name>/_manifests/tags/<tag>/current/link
//	<root>/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//	<root>/repositories/<name>/_uploads/<id>/data
//	<root>/repositories/<name>/_uploads/<id>/startedat
//	<root>/repositories/<name>/_uploads/<id>/hashstates/<alg>/<offset>
//
// Methods that take a name, tag or digest expect it validated
// ([ValidateName], [ValidateTag], [ValidateDigest]); Store and Repository
// validate at their boundary before they call here.
type Layout struct {
	root string
}

// NewLayout returns the layout whose v2 directory is root ("." when the
// backend's root is the v2 directory itself).
func NewLayout(root string) (Layout, error) {
	if !fs.ValidPath(root) {
		return Layout{}, &Error{Op: "layout", Path: root, Err: fmt.Errorf("root is not a valid unrooted slash path: %w", fs.ErrInvalid)}
	}
	return Layout{root: root}, nil
}

// Root is the path of the v2 directory.
func (l Layout) Root() string { return l.root }

// Blobs is the directory holding all blob data.
func (l Layout) Blobs() string { return path.Join(l.root, "blobs") }

// BlobDir is the directory of one blob: blobs/<alg>/<hex[:2]>/<hex>.
func (l Layout) BlobDir(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(l.root, "blobs", algDir(d.Algorithm()), hex[:2], hex)
}

// BlobData is the data file of one blob.
func (l Layout) BlobData(d digest.Digest) string { return path.Join(l.BlobDir(d), "data") }

// QuarantineDir is the directory, below the layout root, where
// [check.Repair] moves what it quarantines, each file at its original path
// relative to the layout root. The registry never reads there.
const QuarantineDir = "_quarantine"

// gcJournal, below the layout root, is the journal of collections before
// journals were per run: one shared file. It is still recovered.
const gcJournal = "_gc/aside"

// asideSuffix names blob data that a collection moved aside.
const asideSuffix = ".gc"

// BlobDataAside is where a collection moves blob data while it makes sure
// nothing new references the blob (see the gc package); [Store.Walk]
// reports such files as [GCLeftover].
func (l Layout) BlobDataAside(d digest.Digest) string { return l.BlobData(d) + asideSuffix }

// GCJournal is the shared journal file that collections before per-run
// journals wrote; collections recover it. Its directory holds every run's
// journal ([Layout.GCRunJournal]).
func (l Layout) GCJournal() string { return path.Join(l.root, gcJournal) }

// GCDir is the directory, below the layout root, of the collections'
// journals ([Layout.GCRunJournal]).
func (l Layout) GCDir() string { return path.Join(l.root, path.Dir(gcJournal)) }

// GCRunJournal is the file in which the collection run lists the blobs
// whose data it is moving aside, so that an interrupted one can be
// finished: _gc/aside-<run>. run must be a single path component of
// letters, digits, '-', '_' or '.'; [Layout.Classify] reports every such
// file as [GCLeftover].
func (l Layout) GCRunJournal(run string) string { return path.Join(l.root, gcJournal+"-"+run) }

// isGCJournal reports whether rel, below the layout root, is a journal.
func isGCJournal(rel string) bool {
	if rel == gcJournal {
		return true
	}
	run, ok := strings.CutPrefix(rel, gcJournal+"-")
	return ok && run != "" && !strings.Contains(run, "/")
}

// Repositories is the directory holding every repository.
func (l Layout) Repositories() string { return path.Join(l.root, "repositories") }

// Repository is the directory of one repository.
func (l Layout) Repository(name string) string { return path.Join(l.root, "repositories", name) }

// Layers is a repository's _layers directory.
func (l Layout) Layers(name string) string { return path.Join(l.Repository(name), "_layers") }

// LayerLink is the _layers link that makes a blob visible in a repository.
func (l Layout) LayerLink(name string, d digest.Digest) string {
	return path.Join(l.Layers(name), algDir(d.Algorithm()), d.Encoded(), "link")
}

// Manifests is a repository's _manifests directory; its presence is what
// makes a directory a repository for the v3 registry.
func (l Layout) Manifests(name string) string { return path.Join(l.Repository(name), "_manifests") }

// Revisions is the directory of a repository's manifest revision links.
func (l Layout) Revisions(name string) string { return path.Join(l.Manifests(name), "revisions") }

// RevisionDir is the directory of one revision link.
func (l Layout) RevisionDir(name string, d digest.Digest) string {
	return path.Join(l.Revisions(name), algDir(d.Algorithm()), d.Encoded())
}

// RevisionLink is the link that makes a manifest visible in a repository.
func (l Layout) RevisionLink(name string, d digest.Digest) string {
	return path.Join(l.RevisionDir(name, d), "link")
}

// Tags is the directory holding a repository's tags.
func (l Layout) Tags(name string) string { return path.Join(l.Manifests(name), "tags") }

// Tag is the directory of one tag.
func (l Layout) Tag(name, tag string) string { return path.Join(l.Tags(name), tag) }

// TagCurrent is the link naming the manifest a tag points at.
func (l Layout) TagCurrent(name, tag string) string {
	return path.Join(l.Tag(name, tag), "current", "link")
}

// TagIndex is the directory of a tag's history.
func (l Layout) TagIndex(name, tag string) string { return path.Join(l.Tag(name, tag), "index") }

// TagIndexEntry is the directory of one entry of a tag's history.
func (l Layout) TagIndexEntry(name, tag string, d digest.Digest) string {
	return path.Join(l.TagIndex(name, tag), algDir(d.Algorithm()), d.Encoded())
}

// TagIndexLink records that a tag has pointed at a manifest.
func (l Layout) TagIndexLink(name, tag string, d digest.Digest) string {
	return path.Join(l.TagIndexEntry(name, tag, d), "link")
}

// Uploads is a repository's _uploads directory.
func (l Layout) Uploads(name string) string { return path.Join(l.Repository(name), "_uploads") }

// Upload is the directory of one upload session.
func (l Layout) Upload(name, id string) string { return path.Join(l.Uploads(name), id) }

// UploadData is the partial data of an upload session.
func (l Layout) UploadData(name, id string) string { return path.Join(l.Upload(name, id), "data") }

// UploadStartedAt holds an upload's start time (RFC 3339, UTC, seconds).
func (l Layout) UploadStartedAt(name, id string) string {
	return path.Join(l.Upload(name, id), "startedat")
}

// UploadHashStates is the directory of an upload's saved hash states.
func (l Layout) UploadHashStates(name, id string) string {
	return path.Join(l.Upload(name, id), "hashstates")
}

// algDir is the directory form of an algorithm: the registry replaces
// '+', '.' and ';' with '/' (a leftover of tarsum digests).
func algDir(a digest.Algorithm) string {
	return strings.NewReplacer("+", "/", ".", "/", ";", "/").Replace(string(a))
}

// BlobDigest maps a blob data path (relative to Blobs) back to its digest,
// as the registry's blob enumeration does: "<alg>/<hex2>/<hex>/data".
// It reports false for anything else, including paths whose digest does not
// validate.
func BlobDigest(rel string) (digest.Digest, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 4 || parts[3] != "data" {
		return "", false
	}
	alg, hex2, hex := parts[0], parts[1], parts[2]
	if len(hex) < 2 || hex[:2] != hex2 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if ValidateDigest(d) != nil {
		return "", false
	}
	return d, true
}

// wellFormed is the common case of [digest.Digest.Validate] without its
// regular expression: a sha256, sha384 or sha512 digest in lowercase hex.
// It returns false for anything else, which Validate then judges.
func wellFormed(d digest.Digest) bool {
	alg, hex, ok := strings.Cut(string(d), ":")
	if !ok {
		return false
	}
	switch {
	case alg == "sha256" && len(hex) == 64, alg == "sha384" && len(hex) == 96, alg == "sha512" && len(hex) == 128:
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

var (
	// nameComponent is distribution/reference's path component grammar.
	nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	// hostComponent is its host name grammar without a port: dot-separated
	// labels of letters (either case), digits and inner hyphens.
	hostComponent = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$`)
	tagPattern    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	uploadPattern = regexp.MustCompile(`^[a-zA-Z0-9_=-][a-zA-Z0-9._=-]*$`)
)

// ValidateName checks a repository name against the grammar of the names
// the registry (2.8 and v3, filesystem driver, no blob-descriptor cache)
// accepts in a push and so can hold on disk: the union of both, which is
// v3's.
//
//   - A name is components joined by '/'. Every component but the first is
//     a path component: lowercase alphanumeric runs separated by one '.',
//     one '_', exactly "__", or a run of '-'
//     ([a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*).
//   - The first component of a name with two or more components may
//     instead be a host name: dot-separated labels of letters of either
//     case, digits and inner hyphens ("Team", "EXAMPLE.com", "localhost").
//     A port (':') or an IPv6 address cannot be stored by the registry's
//     filesystem driver and is refused.
//   - Length: when the first component is a host name, the part after it
//     and its slash has at most [MaxNameLength] characters (the first
//     component is not counted, as v3 does; 2.8 counts the whole name and
//     so accepts a subset); otherwise the whole name has at most
//     MaxNameLength characters. No component has more than 255 bytes (the
//     operating system's limit on a directory name).
//
// A single component is never a host name: "App" is refused, "Team/app"
// accepted, "team/App" refused. The error wraps [ErrInvalidName] (and so
// [fs.ErrInvalid]).
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	comps := strings.Split(name, "/")
	counted, rest := name, comps
	if len(comps) > 1 && hostComponent.MatchString(comps[0]) {
		if len(comps[0]) > maxComponent {
			return fmt.Errorf("%w: host component of %d characters, at most %d", ErrInvalidName, len(comps[0]), maxComponent)
		}
		counted, rest = name[len(comps[0])+1:], comps[1:]
	}
	if len(counted) > MaxNameLength {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidName, len(counted), MaxNameLength)
	}
	for _, c := range rest {
		if !nameComponent.MatchString(c) {
			return fmt.Errorf("%w: %q: component %q must match [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*", ErrInvalidName, name, c)
		}
	}
	return nil
}

// ValidateTag checks a tag against the grammar [\w][\w.-]{0,127}. The error
// wraps [ErrInvalidTag] (and so [fs.ErrInvalid]).
func ValidateTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("%w: %q must match [\\w][\\w.-]{0,127}", ErrInvalidTag, tag)
	}
	return nil
}

// ValidateDigest checks that d is a well-formed digest of an available
// algorithm (sha256, sha384, sha512). Only validated digests may become
// paths: [digest.Digest.Encoded] panics on malformed input. The error wraps
// [ErrInvalidDigest] (and so [fs.ErrInvalid]).
func ValidateDigest(d digest.Digest) error {
	if wellFormed(d) {
		return nil
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrInvalidDigest, string(d), err)
	}
	return nil
}

// validateUploadID checks an upload session id: the registry's route
// grammar, and never "." or "..".
func validateUploadID(id string) error {
	if !uploadPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("%w: upload id %q", fs.ErrInvalid, id)
	}
	return nil
}

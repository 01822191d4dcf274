package usage

import (
	"context"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// Report is the space accounting of a store, from [Measure]. Sizes are
// those of blob data files (manifests, configs, layers), each counted once
// however many repositories, tags or links name it; link files, directories
// and the quarantine area are not counted.
//
// What references what follows the registry's garbage collection: a
// manifest (a revision whose data exists) references its own data, its
// config and layers, and its index children, and through each child that is
// a manifest of the same repository, what that child references. A
// referrer's subject is not referenced by the referrer. A _layers link
// alone references nothing.
type Report struct {
	// Blobs is the number of blob data files, and TotalBytes their size.
	Blobs      int   `json:"blobs"`
	TotalBytes int64 `json:"totalBytes"`
	// TaggedBytes is referenced from some tag: by the manifest a tag
	// points at, or by what it references.
	TaggedBytes int64 `json:"taggedBytes"`
	// UntaggedBytes is referenced only by manifests no tag reaches: what
	// garbage collection with --delete-untagged removes (less the
	// referrers that the gc package keeps for their subjects).
	UntaggedBytes int64 `json:"untaggedBytes"`
	// OrphanedBytes is referenced by no manifest: what garbage collection
	// removes in any mode. TotalBytes = TaggedBytes + UntaggedBytes +
	// OrphanedBytes.
	OrphanedBytes int64 `json:"orphanedBytes"`
	// LinkedOnlyBytes is the part of OrphanedBytes that a repository's
	// _layers link still names: pullable by digest from there, but still
	// removed by garbage collection.
	LinkedOnlyBytes int64 `json:"linkedOnlyBytes"`
	// UploadBytes is the partial data of unfinished uploads, all
	// repositories.
	UploadBytes int64 `json:"uploadBytes"`
	// Repositories are in the order of [regstore.Store.Repositories].
	Repositories []Repository `json:"repositories"`
}

// Space is what a repository or a tag takes. ReferencedBytes =
// UniqueBytes + SharedBytes.
type Space struct {
	// ReferencedBytes is the size of every blob it references.
	ReferencedBytes int64 `json:"referencedBytes"`
	// UniqueBytes is the part referenced by nothing else: for a
	// repository, by no other repository; for a tag, by no other tag of
	// its repository and no other repository.
	UniqueBytes int64 `json:"uniqueBytes"`
	// SharedBytes is the part something else references too.
	SharedBytes int64 `json:"sharedBytes"`
	// FreedBytes is what deleting it, and then collecting garbage, would
	// free: the blobs only it references. For a repository that is
	// UniqueBytes (its upload data is freed too: see UploadBytes). For a
	// tag, the repository's other tags and its untagged manifests count as
	// still referencing, so FreedBytes leaves out, from UniqueBytes, what
	// the tag shares with older, untagged pushes.
	FreedBytes int64 `json:"freedBytes"`
}

// Repository is the space accounting of one repository.
type Repository struct {
	Name string `json:"name"`
	Space
	// UploadBytes is the partial data of the repository's unfinished
	// uploads.
	UploadBytes int64 `json:"uploadBytes"`
	// Tags are sorted by name. A tag that does not resolve to a manifest
	// of the repository references nothing.
	Tags []Tag `json:"tags"`
}

// Tag is the space accounting of one tag: of the manifest it points
// at and what that references.
type Tag struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest,omitempty"`
	Space
}

// usageRepo is what Report learns about one repository.
type usageRepo struct {
	r         *regstore.Repository
	revisions map[digest.Digest]bool
	tags      []Tag
	tagSets   []map[digest.Digest]bool
	all       map[digest.Digest]bool // referenced by any revision
	tagged    map[digest.Digest]bool // referenced from any tag
	untagged  map[digest.Digest]bool // referenced by revisions no tag reaches
	uploads   int64
}

// Measure accounts for the space the store takes: per repository and per
// tag, the bytes referenced, unique and shared, and what deleting each
// would free; and for the whole store, the bytes reachable from tags, only
// from untagged manifests, and from nothing (see [Report]).
//
// It reads the tree through the store's iterators ([regstore.Store.Repositories],
// [regstore.Repository.Manifests], [regstore.Repository.Tags], [regstore.Repository.Layers],
// [regstore.Repository.Uploads], [regstore.Store.Blobs]) and parses every manifest once. A
// manifest that cannot be read counts only its own data; a tag whose
// current link cannot be read references nothing. A corrupt revision or
// _layers link ends the accounting with an error, as it ends those
// iterators; the check package finds it.
func Measure(ctx context.Context, s *regstore.Store) (*Report, error) {
	u := &Report{Repositories: []Repository{}}
	sizes := map[digest.Digest]int64{}
	for b, err := range s.BlobFiles() {
		if err != nil {
			return nil, err
		}
		sizes[b.Digest] = b.Info.Size()
		u.Blobs++
		u.TotalBytes += b.Info.Size()
	}
	manifests := map[digest.Digest]*regstore.Manifest{} // nil: unreadable
	manifest := func(r *regstore.Repository, d digest.Digest) *regstore.Manifest {
		m, ok := manifests[d]
		if !ok {
			m, _ = r.Store().Manifest(d)
			manifests[d] = m
		}
		return m
	}

	var repos []*usageRepo
	linked := map[digest.Digest]bool{}
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ur, err := usageRepository(s, r, sizes, manifest, linked)
		if err != nil {
			return nil, err
		}
		repos = append(repos, ur)
	}

	// Who references each blob.
	repoCount := map[digest.Digest]int{}
	tagged, referenced := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for _, ur := range repos {
		for d := range ur.all {
			repoCount[d]++
			referenced[d] = true
		}
		for d := range ur.tagged {
			tagged[d] = true
		}
	}
	for d, n := range sizes {
		switch {
		case tagged[d]:
			u.TaggedBytes += n
		case referenced[d]:
			u.UntaggedBytes += n
		default:
			u.OrphanedBytes += n
			if linked[d] {
				u.LinkedOnlyBytes += n
			}
		}
	}

	for _, ur := range repos {
		ru := Repository{Name: ur.r.Name(), UploadBytes: ur.uploads, Tags: ur.tags}
		u.UploadBytes += ur.uploads
		for d := range ur.all {
			ru.ReferencedBytes += sizes[d]
			if repoCount[d] == 1 {
				ru.UniqueBytes += sizes[d]
			}
		}
		ru.SharedBytes = ru.ReferencedBytes - ru.UniqueBytes
		ru.FreedBytes = ru.UniqueBytes
		tagCount := map[digest.Digest]int{}
		for _, set := range ur.tagSets {
			for d := range set {
				tagCount[d]++
			}
		}
		for i, set := range ur.tagSets {
			tu := &ru.Tags[i]
			for d := range set {
				n := sizes[d]
				tu.ReferencedBytes += n
				if repoCount[d] == 1 && tagCount[d] == 1 {
					tu.UniqueBytes += n
					if !ur.untagged[d] {
						tu.FreedBytes += n
					}
				}
			}
			tu.SharedBytes = tu.ReferencedBytes - tu.UniqueBytes
		}
		u.Repositories = append(u.Repositories, ru)
	}
	return u, nil
}

// usageRepository reads one repository: its revisions, what each tag
// references, and its uploads; it adds the blobs its _layers links name to
// linked.
func usageRepository(s *regstore.Store, r *regstore.Repository, sizes map[digest.Digest]int64,
	manifest func(*regstore.Repository, digest.Digest) *regstore.Manifest, linked map[digest.Digest]bool) (*usageRepo, error) {
	ur := &usageRepo{r: r, revisions: map[digest.Digest]bool{}, all: map[digest.Digest]bool{},
		tagged: map[digest.Digest]bool{}, untagged: map[digest.Digest]bool{}}
	for d, err := range r.Manifests() {
		if err != nil {
			return nil, err
		}
		ur.revisions[d] = true
	}
	// canonical maps a referenced digest to the blob data it names: itself
	// when sha256, else through the repository's alias link.
	canonical := func(d digest.Digest) (digest.Digest, bool) {
		if _, ok := sizes[d]; ok {
			return d, true
		}
		if regstore.ValidateDigest(d) != nil || d.Algorithm() == digest.Canonical {
			return "", false
		}
		b, err := r.Blob(d)
		if err != nil {
			return "", false
		}
		_, ok := sizes[b.Digest()]
		return b.Digest(), ok
	}
	// closure adds to set manifest d and everything it references.
	var closure func(d digest.Digest, set map[digest.Digest]bool)
	closure = func(d digest.Digest, set map[digest.Digest]bool) {
		if set[d] {
			return
		}
		if _, ok := sizes[d]; !ok {
			return
		}
		set[d] = true
		m := manifest(r, d)
		if m == nil {
			return
		}
		for b := range m.Blobs() {
			if c, ok := canonical(b.Digest); ok {
				set[c] = true
			}
		}
		for _, c := range m.Children() {
			if ur.revisions[c.Digest] {
				closure(c.Digest, set)
			} else if cd, ok := canonical(c.Digest); ok {
				set[cd] = true
			}
		}
	}
	for d := range ur.revisions {
		closure(d, ur.all)
	}
	for t, err := range r.Tags() {
		if err != nil {
			return nil, err
		}
		tu := Tag{Name: t.Name()}
		set := map[digest.Digest]bool{}
		if d, err := t.Digest(); err == nil {
			tu.Digest = d
			if ur.revisions[d] {
				closure(d, set)
			}
		}
		for d := range set {
			ur.tagged[d] = true
		}
		ur.tags = append(ur.tags, tu)
		ur.tagSets = append(ur.tagSets, set)
	}
	for d := range ur.revisions {
		if !ur.tagged[d] {
			closure(d, ur.untagged)
		}
	}
	for d, err := range r.Layers() {
		if err != nil {
			return nil, err
		}
		if c, ok := canonical(d); ok {
			linked[c] = true
		}
	}
	for up, err := range r.Uploads() {
		if err != nil {
			return nil, err
		}
		ur.uploads += up.Size
	}
	return ur, nil
}

package usage

import (
	"bytes"
	"context"
	"iter"
	"sort"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// Totals is the store-wide part of the space accounting: what
// [Accounting.Totals] returns before any repository is accounted for.
// Sizes are those of blob data files (manifests, configs, layers), each
// counted once however many repositories, tags or links name it; link
// files, directories and the quarantine area are not counted.
type Totals struct {
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
}

// Report is the space accounting of a store, from [Measure]: the totals
// and every repository's accounting.
//
// What references what follows the registry's garbage collection: a
// manifest (a revision whose data exists) references its own data, its
// config and layers, and its index children, and through each child that is
// a manifest of the same repository, what that child references. A
// referrer's subject is not referenced by the referrer. A _layers link
// alone references nothing.
type Report struct {
	Totals
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

// Measure accounts for the space the store takes: per repository and per
// tag, the bytes referenced, unique and shared, and what deleting each
// would free; and for the whole store, the bytes reachable from tags, only
// from untagged manifests, and from nothing (see [Report]).
//
// It is [Account] followed by [Accounting.Repositories], collected: the
// report holds every repository and tag. To keep memory bounded on a large
// store, use those two directly and handle each repository as it comes.
func Measure(ctx context.Context, s *regstore.Store) (*Report, error) {
	a, err := Account(ctx, s)
	if err != nil {
		return nil, err
	}
	u := &Report{Totals: a.Totals(), Repositories: []Repository{}}
	for ru, err := range a.Repositories(ctx) {
		if err != nil {
			return nil, err
		}
		u.Repositories = append(u.Repositories, ru)
	}
	return u, nil
}

// Accounting is the store-wide state of a space accounting, from
// [Account]: every blob data file's digest and size and, per blob, whether
// one or more repositories reference it, whether a tag reaches it and
// whether a _layers link names it. It takes 41 bytes per blob and nothing
// per repository, tag or manifest.
// Once made, it is only read: its methods may be called from several
// goroutines at once.
type Accounting struct {
	s      *regstore.Store
	blobs  blobTable
	totals Totals
}

// Account makes the first of the accounting's two passes over the store:
// it lists every blob data file, then reads every repository's revisions,
// tags, _layers links and uploads and parses its manifests, keeping only
// what each blob's accounting needs. The second pass,
// [Accounting.Repositories] or [Accounting.Repository], reads a repository
// again to account for it and its tags: memory stays bounded by the blob
// table plus what one repository needs, at the price of reading the
// manifests twice.
//
// A manifest that cannot be read counts only its own data; a tag whose
// current link cannot be read references nothing. A corrupt revision or
// _layers link ends the accounting with an error, as it ends those
// iterators; the check package finds it. A tree that changes between the
// passes gives figures that mix its states.
func Account(ctx context.Context, s *regstore.Store) (*Accounting, error) {
	a := &Accounting{s: s}
	if err := a.blobs.load(s); err != nil {
		return nil, err
	}
	a.totals.Blobs = a.blobs.len()
	for i := range a.totals.Blobs {
		a.totals.TotalBytes += a.blobs.size(uint32(i))
	}
	sc := newScanner(a)
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sc.scan(r, true); err != nil {
			return nil, err
		}
		for i := range sc.all {
			if a.blobs.flags[i]&refOne != 0 {
				a.blobs.flags[i] |= refMany
			}
			a.blobs.flags[i] |= refOne
		}
		for i := range sc.tagged {
			a.blobs.flags[i] |= tagged
		}
		a.totals.UploadBytes += sc.uploads
	}
	for i, f := range a.blobs.flags {
		n := a.blobs.size(uint32(i))
		switch {
		case f&tagged != 0:
			a.totals.TaggedBytes += n
		case f&refOne != 0:
			a.totals.UntaggedBytes += n
		default:
			a.totals.OrphanedBytes += n
			if f&linked != 0 {
				a.totals.LinkedOnlyBytes += n
			}
		}
	}
	return a, nil
}

// Totals is the store-wide accounting.
func (a *Accounting) Totals() Totals { return a.totals }

// Repositories yields the accounting of each repository, in the order of
// [regstore.Store.Repositories], reading each one again. It stops at the
// first error, which it yields.
func (a *Accounting) Repositories(ctx context.Context) iter.Seq2[Repository, error] {
	return func(yield func(Repository, error) bool) {
		sc := newScanner(a)
		for r, err := range a.s.Repositories() {
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(Repository{}, err)
				return
			}
			ru, err := sc.account(r)
			if !yield(ru, err) || err != nil {
				return
			}
		}
	}
}

// Repository is the accounting of one repository of the store, which
// [Account] has seen. For a repository it has not seen (created since), a
// blob counts as unique unless two repositories referenced it in the first
// pass, and a blob newer than the first pass's listing counts nothing.
func (a *Accounting) Repository(ctx context.Context, r *regstore.Repository) (Repository, error) {
	if err := ctx.Err(); err != nil {
		return Repository{}, err
	}
	return newScanner(a).account(r)
}

// Flags of a blob in the table.
const (
	refOne  uint8 = 1 << iota // some repository references it
	refMany                   // more than one repository does
	tagged                    // some tag reaches it
	linked                    // some _layers link names it
)

// blobTable is every blob data file of the store, as an index: sha256
// digests as sorted 32-byte keys with their sizes (a blob's index is its
// position), then blobs of other algorithms, rare, in a map. The keys and
// sizes are kept in fixed-size chunks, so that the table grows without
// copying: its memory is 40 bytes per blob, plus one for the flags, with no
// slack and no transient second copy.
type blobTable struct {
	chunks     []*chunk
	n          int // sha256 blobs
	other      map[digest.Digest]uint32
	otherSizes []int64
	flags      []uint8
}

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
)

type chunk struct {
	keys  [chunkLen][32]byte
	sizes [chunkLen]int64
}

func (t *blobTable) len() int { return t.n + len(t.otherSizes) }

func (t *blobTable) key(i int) *[32]byte { return &t.chunks[i>>chunkBits].keys[i&(chunkLen-1)] }

func (t *blobTable) sizeAt(i int) *int64 { return &t.chunks[i>>chunkBits].sizes[i&(chunkLen-1)] }

// size is the size of blob i.
func (t *blobTable) size(i uint32) int64 {
	if int(i) < t.n {
		return *t.sizeAt(int(i))
	}
	return t.otherSizes[int(i)-t.n]
}

func (t *blobTable) add(k [32]byte, size int64) {
	if t.n == len(t.chunks)*chunkLen {
		t.chunks = append(t.chunks, new(chunk))
	}
	*t.key(t.n), *t.sizeAt(t.n) = k, size
	t.n++
}

func (t *blobTable) load(s *regstore.Store) error {
	// Keys are added as listed, in the listing's order, which is digest
	// order on every backend: they are sorted only when it is not.
	var other []regstore.BlobFile
	sorted := true
	for b, err := range s.BlobFiles() {
		if err != nil {
			return err
		}
		k, ok := sha256Key(b.Digest)
		if !ok {
			other = append(other, b)
			continue
		}
		if t.n > 0 && bytes.Compare(t.key(t.n - 1)[:], k[:]) >= 0 {
			sorted = false
		}
		t.add(k, b.Info.Size())
	}
	if !sorted {
		t.sortKeys()
	}
	for _, b := range other {
		if _, dup := t.other[b.Digest]; dup {
			continue
		}
		if t.other == nil {
			t.other = map[digest.Digest]uint32{}
		}
		t.other[b.Digest] = uint32(t.len())
		t.otherSizes = append(t.otherSizes, b.Info.Size())
	}
	t.flags = make([]uint8, t.len())
	return nil
}

// sortKeys sorts the sha256 keys, with their sizes, and drops repeated
// ones.
func (t *blobTable) sortKeys() {
	sort.Sort(byKey{t})
	n := 0
	for i := range t.n {
		if n > 0 && *t.key(n - 1) == *t.key(i) {
			continue
		}
		*t.key(n), *t.sizeAt(n) = *t.key(i), *t.sizeAt(i)
		n++
	}
	t.n = n
	t.chunks = t.chunks[:(n+chunkLen-1)/chunkLen]
}

// byKey sorts a table's sha256 keys and their sizes together.
type byKey struct{ t *blobTable }

func (b byKey) Len() int           { return b.t.n }
func (b byKey) Less(i, j int) bool { return bytes.Compare(b.t.key(i)[:], b.t.key(j)[:]) < 0 }
func (b byKey) Swap(i, j int) {
	ki, kj := b.t.key(i), b.t.key(j)
	*ki, *kj = *kj, *ki
	si, sj := b.t.sizeAt(i), b.t.sizeAt(j)
	*si, *sj = *sj, *si
}

// index is the blob's index in the table.
func (t *blobTable) index(d digest.Digest) (uint32, bool) {
	if k, ok := sha256Key(d); ok {
		i := sort.Search(t.n, func(i int) bool { return bytes.Compare(t.key(i)[:], k[:]) >= 0 })
		return uint32(i), i < t.n && *t.key(i) == k
	}
	i, ok := t.other[d]
	return i, ok
}

// sha256Key is the 32 bytes a well-formed sha256 digest names.
func sha256Key(d digest.Digest) (k [32]byte, ok bool) {
	const prefix = "sha256:"
	s := string(d)
	if len(s) != len(prefix)+64 || s[:len(prefix)] != prefix {
		return k, false
	}
	for i := range 32 {
		hi, ok1 := unhex(s[len(prefix)+2*i])
		lo, ok2 := unhex(s[len(prefix)+2*i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[i] = hi<<4 | lo
	}
	return k, true
}

// unhex decodes a lowercase hex digit: the registry's digests are
// lowercase, and an uppercase one names no blob.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// set is a set of blobs, by index.
type set map[uint32]struct{}

// scanner reads one repository at a time: what its revisions reference
// (all), what its tags reach (tagged, and per tag), and what only its
// untagged revisions reach. Its maps are reused from one repository to the
// next.
type scanner struct {
	a         *Accounting
	revisions map[digest.Digest]bool
	manifests map[digest.Digest]*regstore.Manifest // nil: unreadable
	all       set
	tagged    set
	untagged  set
	tags      []Tag
	tagSets   []set
	uploads   int64
	r         *regstore.Repository
}

func newScanner(a *Accounting) *scanner {
	return &scanner{a: a, revisions: map[digest.Digest]bool{}, manifests: map[digest.Digest]*regstore.Manifest{},
		all: set{}, tagged: set{}, untagged: set{}}
}

// scan reads repository r. In the first pass (first) it also marks the
// blobs its _layers links name; only the second computes what only untagged
// revisions reach.
func (sc *scanner) scan(r *regstore.Repository, first bool) error {
	sc.r = r
	clear(sc.revisions)
	clear(sc.manifests)
	clear(sc.all)
	clear(sc.tagged)
	clear(sc.untagged)
	sc.tags, sc.tagSets, sc.uploads = nil, nil, 0
	for d, err := range r.Manifests() {
		if err != nil {
			return err
		}
		sc.revisions[d] = true
	}
	for d := range sc.revisions {
		sc.closure(d, sc.all)
	}
	for t, err := range r.Tags() {
		if err != nil {
			return err
		}
		tu := Tag{Name: t.Name()}
		var ts set
		if !first {
			ts = set{}
		}
		if d, err := t.Digest(); err == nil {
			tu.Digest = d
			if sc.revisions[d] {
				if first {
					sc.closure(d, sc.tagged)
				} else {
					sc.closure(d, ts)
				}
			}
		}
		if !first {
			for i := range ts {
				sc.tagged[i] = struct{}{}
			}
			sc.tags = append(sc.tags, tu)
			sc.tagSets = append(sc.tagSets, ts)
		}
	}
	if first {
		for d, err := range r.Layers() {
			if err != nil {
				return err
			}
			if i, ok := sc.canonical(d); ok {
				sc.a.blobs.flags[i] |= linked
			}
		}
	} else {
		for d := range sc.revisions {
			if i, ok := sc.a.blobs.index(d); !ok || !has(sc.tagged, i) {
				sc.closure(d, sc.untagged)
			}
		}
	}
	for up, err := range r.Uploads() {
		if err != nil {
			return err
		}
		sc.uploads += up.Size
	}
	return nil
}

func has(s set, i uint32) bool {
	_, ok := s[i]
	return ok
}

// canonical is the index of the blob data a referenced digest names:
// itself when sha256, else through the repository's alias link.
func (sc *scanner) canonical(d digest.Digest) (uint32, bool) {
	if i, ok := sc.a.blobs.index(d); ok {
		return i, true
	}
	if regstore.ValidateDigest(d) != nil || d.Algorithm() == digest.Canonical {
		return 0, false
	}
	b, err := sc.r.Blob(d)
	if err != nil {
		return 0, false
	}
	return sc.a.blobs.index(b.Digest())
}

// closure adds to s manifest d and everything it references.
func (sc *scanner) closure(d digest.Digest, s set) {
	i, ok := sc.a.blobs.index(d)
	if !ok || has(s, i) {
		return
	}
	s[i] = struct{}{}
	m, ok := sc.manifests[d]
	if !ok {
		m, _ = sc.a.s.Manifest(d)
		sc.manifests[d] = m
	}
	if m == nil {
		return
	}
	for b := range m.Blobs() {
		if c, ok := sc.canonical(b.Digest); ok {
			s[c] = struct{}{}
		}
	}
	for _, c := range m.Children() {
		if sc.revisions[c.Digest] {
			sc.closure(c.Digest, s)
		} else if ci, ok := sc.canonical(c.Digest); ok {
			s[ci] = struct{}{}
		}
	}
}

// account reads repository r again and accounts for it and its tags.
func (sc *scanner) account(r *regstore.Repository) (Repository, error) {
	if err := sc.scan(r, false); err != nil {
		return Repository{}, err
	}
	t := &sc.a.blobs
	// Referenced by no other repository (or by none at all, in a
	// repository created since the first pass).
	unique := func(i uint32) bool { return t.flags[i]&refMany == 0 }
	ru := Repository{Name: r.Name(), UploadBytes: sc.uploads, Tags: sc.tags}
	if ru.Tags == nil {
		ru.Tags = []Tag{}
	}
	for i := range sc.all {
		ru.ReferencedBytes += t.size(i)
		if unique(i) {
			ru.UniqueBytes += t.size(i)
		}
	}
	ru.SharedBytes = ru.ReferencedBytes - ru.UniqueBytes
	ru.FreedBytes = ru.UniqueBytes
	tagCount := map[uint32]int{}
	for _, s := range sc.tagSets {
		for i := range s {
			tagCount[i]++
		}
	}
	for k, s := range sc.tagSets {
		tu := &ru.Tags[k]
		for i := range s {
			n := t.size(i)
			tu.ReferencedBytes += n
			if unique(i) && tagCount[i] == 1 {
				tu.UniqueBytes += n
				if !has(sc.untagged, i) {
					tu.FreedBytes += n
				}
			}
		}
		tu.SharedBytes = tu.ReferencedBytes - tu.UniqueBytes
	}
	sc.tags, sc.tagSets = nil, nil
	return ru, nil
}

package usage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/usage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sizedLayer is a layer blob of exactly n bytes (not a real tar: only its
// size matters here).
func sizedLayer(fill byte, n int) regstoretest.Layer {
	b := bytes.Repeat([]byte{fill}, n)
	return regstoretest.Layer{Compressed: b, DiffID: digest.FromBytes(b)}
}

// usageTree is a small store whose accounting is computed by hand below.
//
//	a   img1 = {base 1000, a1 100}          tagged v1
//	    img2 = {base 1000, a2 200}          tagged v2 and latest
//	    old  = {a1 100, a3 400}             untagged
//	    one upload session of 24 bytes
//	b   imgB = {base 1000, b1 20}           tagged latest
//	    idx  = index of child = {c1 3000}   tagged multi (child untagged)
//	    loose, 7 bytes, linked in b's _layers and referenced by nothing
//	orphan, 5 bytes, linked and referenced by nothing
//
// Manifests and configs add their own sizes (M and C below).
type usageTree struct {
	s                                *regstore.Store
	img1, img2, old, imgB, child, ix *regstore.Manifest
}

func buildUsageTree(t *testing.T, load func(testing.TB, *regstore.MemFS) regstore.WriteFS) usageTree {
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	base := sizedLayer('B', 1000)
	var u usageTree
	a := kitRepo(t, s, "a")
	u.img1 = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{base, sizedLayer('1', 100)}}, "v1")
	u.img2 = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{base, sizedLayer('2', 200)}}, "v2", "latest")
	u.old = regstoretest.Push(t, a, regstoretest.Image{Layers: []regstoretest.Layer{sizedLayer('1', 100), sizedLayer('3', 400)}})
	require.NoError(t, regstoretest.HalfWrittenUpload(s, "a", kitUploadID, time.Now()))

	b := kitRepo(t, s, "b")
	u.imgB = regstoretest.Push(t, b, regstoretest.Image{Layers: []regstoretest.Layer{base, sizedLayer('b', 20)}}, "latest")
	u.child = regstoretest.Push(t, b, regstoretest.Image{Layers: []regstoretest.Layer{sizedLayer('c', 3000)}})
	u.ix = regstoretest.PushIndex(t, b, "", []*regstore.Manifest{u.child}, "multi")
	_, err = b.PutBlob(bytes.NewReader(bytes.Repeat([]byte{'L'}, 7)), "", -1)
	require.NoError(t, err)
	_, err = regstoretest.OrphanBlob(s, bytes.Repeat([]byte{'O'}, 5))
	require.NoError(t, err)

	u.s, err = regstore.Open(load(t, m))
	require.NoError(t, err)
	return u
}

func mc(m *regstore.Manifest) int64 {
	c, _ := m.Config()
	return m.Size() + c.Size
}

func space(ref, unique, freed int64) usage.Space {
	return usage.Space{ReferencedBytes: ref, UniqueBytes: unique, SharedBytes: ref - unique, FreedBytes: freed}
}

func TestUsage(t *testing.T) {
	for _, bk := range kitBackends {
		t.Run(bk.name, func(t *testing.T) {
			u := buildUsageTree(t, bk.load)
			got, err := usage.Measure(context.Background(), u.s)
			require.NoError(t, err)

			m1, m2, mo, mb, mi, mch := mc(u.img1), mc(u.img2), mc(u.old), mc(u.imgB), u.ix.Size(), mc(u.child)
			want := &usage.Report{
				Totals: usage.Totals{
					Blobs: 19, // 11 manifests and configs, 6 layers, loose, orphan
					TotalBytes: m1 + m2 + mo + mb + mi + mch +
						1000 + 100 + 200 + 400 + 20 + 3000 + 7 + 5,
					// img1, img2, imgB, the index and its child.
					TaggedBytes: m1 + m2 + mb + mi + mch + 1000 + 100 + 200 + 20 + 3000,
					// old and a3; a1 is also img1's, which is tagged.
					UntaggedBytes:   mo + 400,
					OrphanedBytes:   7 + 5,
					LinkedOnlyBytes: 7,
					UploadBytes:     24,
				},
				Repositories: []usage.Repository{
					{
						Name: "a",
						// base is shared with b; everything else is a's alone.
						Space:       space(m1+m2+mo+1000+100+200+400, m1+m2+mo+100+200+400, m1+m2+mo+100+200+400),
						UploadBytes: 24,
						Tags: []usage.Tag{
							// latest and v2 share img2 entirely: neither frees anything.
							{Name: "latest", Digest: u.img2.Digest(), Space: space(m2+1000+200, 0, 0)},
							// a1 is v1's alone among tags, but the untagged
							// old image uses it too: it is unique, not freed.
							{Name: "v1", Digest: u.img1.Digest(), Space: space(m1+1000+100, m1+100, m1)},
							{Name: "v2", Digest: u.img2.Digest(), Space: space(m2+1000+200, 0, 0)},
						},
					},
					{
						Name: "b",
						// The loose blob is linked only: not referenced.
						Space: space(mb+mi+mch+1000+20+3000, mb+mi+mch+20+3000, mb+mi+mch+20+3000),
						Tags: []usage.Tag{
							{Name: "latest", Digest: u.imgB.Digest(), Space: space(mb+1000+20, mb+20, mb+20)},
							// The index's child and its blobs belong to the tag.
							{Name: "multi", Digest: u.ix.Digest(), Space: space(mi+mch+3000, mi+mch+3000, mi+mch+3000)},
						},
					},
				},
			}
			assert.Equal(t, want, got)
			assert.Equal(t, got.TotalBytes, got.TaggedBytes+got.UntaggedBytes+got.OrphanedBytes, "Total = Tagged + Untagged + Orphaned")

			// Deleting repository a and collecting garbage frees what Usage
			// says.
			require.NoError(t, u.s.DeleteRepository("a"), "DeleteRepository(a)")
			plan, err := gc.Mark(context.Background(), u.s, gc.Options{Grace: -1})
			require.NoError(t, err)
			assert.Equal(t, want.Repositories[0].FreedBytes+want.OrphanedBytes, plan.Bytes,
				"gc.Mark after deleting a: a's freed bytes, plus the orphans")
		})
	}
}

// TestUsageTagFreedMatchesGC: after deleting the manifests only a tag
// reaches, garbage collection frees exactly the tag's FreedBytes (plus what
// was orphaned already), untagged manifests being kept.
func TestUsageTagFreedMatchesGC(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		repo, tag string
		manifests func(u usageTree) []*regstore.Manifest
	}{
		{"a", "v1", func(u usageTree) []*regstore.Manifest { return []*regstore.Manifest{u.img1} }},
		{"b", "latest", func(u usageTree) []*regstore.Manifest { return []*regstore.Manifest{u.imgB} }},
		{"b", "multi", func(u usageTree) []*regstore.Manifest { return []*regstore.Manifest{u.ix, u.child} }},
	}
	for _, bk := range kitBackends {
		for _, tc := range cases {
			t.Run(bk.name+"/"+tc.repo+":"+tc.tag, func(t *testing.T) {
				u := buildUsageTree(t, bk.load)
				got, err := usage.Measure(ctx, u.s)
				require.NoError(t, err)
				var freed int64 = -1
				for _, ru := range got.Repositories {
					for _, tg := range ru.Tags {
						if ru.Name == tc.repo && tg.Name == tc.tag {
							freed = tg.FreedBytes
						}
					}
				}
				require.Positive(t, freed, "Usage has %s:%s", tc.repo, tc.tag)
				r := kitRepo(t, u.s, tc.repo)
				for _, m := range tc.manifests(u) {
					require.NoError(t, r.DeleteManifest(m.Digest()), "DeleteManifest(%s)", m.Digest())
				}
				plan, err := gc.Mark(ctx, u.s, gc.Options{Grace: -1})
				require.NoError(t, err)
				assert.Equal(t, freed+got.OrphanedBytes, plan.Bytes, "gc.Mark bytes after deleting %s:%s", tc.repo, tc.tag)
			})
		}
	}
}

func TestUsageJSON(t *testing.T) {
	u := buildUsageTree(t, kitBackends[0].load)
	got, err := usage.Measure(context.Background(), u.s)
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var generic map[string]any
	require.NoError(t, json.Unmarshal(b, &generic))
	for _, key := range []string{"blobs", "totalBytes", "taggedBytes", "untaggedBytes", "orphanedBytes", "linkedOnlyBytes", "uploadBytes", "repositories"} {
		assert.Contains(t, generic, key)
	}
	repo := generic["repositories"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "referencedBytes", "uniqueBytes", "sharedBytes", "freedBytes", "uploadBytes", "tags"} {
		assert.Contains(t, repo, key, "repository keys (SpaceUsage is inlined)")
	}
	var back usage.Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, got, &back, "JSON round trip")
}

// TestUsageEmptyStore: an empty backend takes no space.
func TestUsageEmptyStore(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	got, err := usage.Measure(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, &usage.Report{Repositories: []usage.Repository{}}, got)
}

// ExampleStore_Usage shows what two tags of one repository share.
func ExampleMeasure() {
	s, _ := regstore.Open(regstore.NewMemFS())
	r, _ := s.Repository("app")
	base := sizedLayer('B', 1000)
	for i, tag := range []string{"v1", "v2"} {
		img := regstoretest.Image{Layers: []regstoretest.Layer{base, sizedLayer(byte('a'+i), 100)}}
		if _, err := regstoretest.PushImage(r, img, tag); err != nil {
			fmt.Println(err)
			return
		}
	}
	u, err := usage.Measure(context.Background(), s)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tg := range u.Repositories[0].Tags {
		// Each tag shares the 1000-byte base layer with the other.
		fmt.Println(tg.Name, "shared:", tg.SharedBytes, "freed:", tg.FreedBytes == tg.ReferencedBytes-1000)
	}
	// Output:
	// v1 shared: 1000 freed: true
	// v2 shared: 1000 freed: true
}

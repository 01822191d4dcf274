package regstore_test

import (
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTagSetRefused checks that Tag.Set only points a tag at a manifest of
// its own repository, and writes nothing otherwise.
func TestTagSetRefused(t *testing.T) {
	const repo = "team/app"
	img := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	imgD := digest.FromString(img)
	for _, c := range []struct {
		name    string
		build   func(h *hTree)
		d       digest.Digest
		wantErr error
	}{
		{"manifest in another repository", func(h *hTree) { h.image("other", hConfig, []string{hLayerA}) }, imgD, fs.ErrNotExist},
		{"manifest data only", func(h *hTree) { h.data(img) }, imgD, fs.ErrNotExist},
		{"manifest linked only in _layers", func(h *hTree) { h.layer(repo, img) }, imgD, fs.ErrNotExist},
		{"dangling revision link", func(h *hTree) { h.put(h.l.RevisionLink(repo, imgD), imgD.String()) }, imgD, fs.ErrNotExist},
		{"corrupt revision link", func(h *hTree) {
			h.data(img)
			h.put(h.l.RevisionLink(repo, imgD), imgD.String()+"\n")
		}, imgD, regstore.ErrCorruptLink},
		{"invalid digest", nil, "sha256:1234", regstore.ErrInvalidDigest},
		{"empty digest", nil, "", regstore.ErrInvalidDigest},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				h.image(repo, hConfig, []string{hLayerB}, "v1")
				if c.build != nil {
					c.build(h)
				}
				before := h.listing()
				for _, tag := range []string{"v1", "new"} {
					err := h.tagOf(repo, tag).Set(c.d)
					hCheckErr(t, err, c.wantErr, "Tag(%s).Set(%s)", tag, c.d)
				}
				assert.Equal(t, before, h.listing(), "tree after refused Set")
			})
		})
	}
}

// TestTagSet checks the files Tag.Set writes, their order, and that moving
// a tag keeps its history.
func TestTagSet(t *testing.T) {
	const repo = "team/app"
	for _, bk := range hBackends {
		t.Run(bk.name, func(t *testing.T) {
			rec := &hRecorder{WriteFS: bk.new(t)}
			h := newHTree(t, rec)
			m1 := h.image(repo, hConfig, []string{hLayerA})
			m2 := h.image(repo, hConfig, []string{hLayerB})
			tag := h.tagOf(repo, "v1")
			assert.Equal(t, "v1", tag.Name())
			assert.Equal(t, repo, tag.Repository().Name())
			assert.Equal(t, repo+":v1", tag.String())

			before := h.listing()
			rec.take()
			require.NoError(t, tag.Set(m1), "Set(%s)", m1)
			added, removed := hDiff(before, h.listing())
			assert.Equal(t, hWithDirs(before,
				h.l.TagIndexLink(repo, "v1", m1)+"="+m1.String(),
				h.l.TagCurrent(repo, "v1")+"="+m1.String()), hSortListing(added), "files Set adds")
			assert.Empty(t, removed)
			assert.Equal(t, []string{"+" + h.l.TagIndexLink(repo, "v1", m1), "+" + h.l.TagCurrent(repo, "v1")}, rec.take(),
				"Set writes the index entry, then the current link")

			require.NoError(t, tag.Set(m2), "Set(%s)", m2)
			got, err := tag.Resolve()
			require.NoError(t, err)
			assert.Equal(t, m2, got.Digest(), "Resolve after moving the tag")
			hist, err := hSeq(tag.History())
			require.NoError(t, err)
			assert.Equal(t, slices.Sorted(slices.Values([]digest.Digest{m1, m2})), hist, "History keeps the old entry, in path order")

			before = h.listing()
			require.NoError(t, tag.Set(m2), "Set(%s) again", m2)
			assert.Equal(t, before, h.listing(), "setting a tag to where it points changes nothing")
		})
	}
}

// TestTagDelete checks the v3 registry's DELETE by tag: the whole tag
// directory goes, its current link first; the manifest stays.
func TestTagDelete(t *testing.T) {
	const repo = "team/app"
	for _, bk := range hBackends {
		t.Run(bk.name, func(t *testing.T) {
			rec := &hRecorder{WriteFS: bk.new(t)}
			h := newHTree(t, rec)
			m1 := h.image(repo, hConfig, []string{hLayerA}, "v1", "keep")
			m2 := h.image(repo, hConfig, []string{hLayerB})
			h.tag(repo, "v1", m2) // v1 moved: its index holds m1 and m2
			before := h.listing()
			rec.take()

			require.NoError(t, h.tagOf(repo, "v1").Delete(), "Delete(v1)")
			_, removed := hDiff(before, h.listing())
			var want []string
			for _, x := range before {
				if strings.HasPrefix(x, h.l.Tag(repo, "v1")+"/") {
					want = append(want, x)
				}
			}
			assert.Equal(t, hSortListing(want), hSortListing(removed), "Delete removes the tag directory whole, index included")
			ops := rec.take()
			require.NotEmpty(t, ops)
			assert.Equal(t, "-"+h.l.TagCurrent(repo, "v1"), ops[0], "the current link goes first")

			_, err := h.tagOf(repo, "v1").Resolve()
			hCheckErr(t, err, fs.ErrNotExist, "Resolve(v1) after Delete")
			for _, d := range []digest.Digest{m1, m2} {
				_, err := h.repo(repo).Manifest(d)
				assert.NoError(t, err, "Manifest(%s) after deleting a tag on it", d)
			}
			got, err := h.tagOf(repo, "keep").Resolve()
			require.NoError(t, err, "other tags stay")
			assert.Equal(t, m1, got.Digest())
			hCheckErr(t, h.tagOf(repo, "v1").Delete(), fs.ErrNotExist, "second Delete(v1)")
			hCheckErr(t, h.tagOf(repo, "never").Delete(), fs.ErrNotExist, "Delete(never)")

			// A tag directory without a current link is a tag: it can be
			// deleted.
			h.put(h.l.TagIndexLink(repo, "broken", m1), m1.String())
			require.NoError(t, h.tagOf(repo, "broken").Delete(), "Delete(broken)")
			_, err = fs.Stat(h.w, h.l.Tag(repo, "broken"))
			assert.ErrorIs(t, err, fs.ErrNotExist, "tag directory after Delete(broken)")

			// Deleting every tag leaves an empty tags directory, as the
			// registry does on a filesystem.
			require.NoError(t, h.tagOf(repo, "keep").Delete(), "Delete(keep)")
			tags, err := hNames(h.repo(repo).Tags())
			require.NoError(t, err)
			assert.Empty(t, tags, "Tags after deleting every tag")
		})
	}
}

// TestTags checks the listing of tags: byte order, every directory whether
// or not it resolves, nothing else.
func TestTags(t *testing.T) {
	const repo = "team/app"
	hEach(t, func(t *testing.T, h *hTree) {
		m := h.image(repo, hConfig, []string{hLayerA})
		tags, err := hNames(h.repo(repo).Tags())
		require.NoError(t, err)
		assert.Empty(t, tags, "Tags of a repository never tagged")
		tags, err = hNames(h.repo("none").Tags())
		require.NoError(t, err)
		assert.Empty(t, tags, "Tags of a missing repository")

		for _, tg := range []string{"v1", "latest", "1.0.1", "V1", "1.0", "_x", "a", "1.0-rc"} {
			h.tag(repo, tg, m)
		}
		h.dir(h.l.Tag(repo, "no-current"))
		h.put(path.Join(h.l.Tags(repo), "stray-file"), "x")
		h.dir(path.Join(h.l.Tags(repo), ".hidden"))
		h.dir(path.Join(h.l.Tags(repo), "-dash"))
		tags, err = hNames(h.repo(repo).Tags())
		require.NoError(t, err)
		assert.Equal(t, []string{"1.0", "1.0-rc", "1.0.1", "V1", "_x", "a", "latest", "no-current", "v1"}, tags,
			"Tags: directory names in byte order, invalid names and files skipped")
	})
}

// TestTagHistory checks the tag index as History reads it.
func TestTagHistory(t *testing.T) {
	const repo = "team/app"
	var ds []digest.Digest
	for _, s := range []string{"one", "two", "three"} {
		ds = append(ds, digest.FromString(s))
	}
	sorted := slices.Sorted(slices.Values(ds))
	for _, c := range []struct {
		name    string
		build   func(h *hTree)
		want    []digest.Digest
		wantErr error
	}{
		{"no index", func(h *hTree) { h.put(h.l.TagCurrent(repo, "t"), ds[0].String()) }, nil, nil},
		{"entries in path order, whether or not the manifests exist", func(h *hTree) {
			for _, d := range ds {
				h.put(h.l.TagIndexLink(repo, "t", d), d.String())
			}
		}, sorted, nil},
		{"entry directory without a link is skipped", func(h *hTree) {
			h.put(h.l.TagIndexLink(repo, "t", ds[0]), ds[0].String())
			h.dir(h.l.TagIndexEntry(repo, "t", ds[1]))
		}, ds[:1], nil},
		{"temporary file next to a link is ignored", func(h *hTree) {
			h.put(h.l.TagIndexLink(repo, "t", ds[0]), ds[0].String())
			h.put(h.l.TagIndexLink(repo, "t", ds[0])+".0123.tmp", "sha")
		}, ds[:1], nil},
		{"corrupt entry", func(h *hTree) {
			h.put(h.l.TagIndexLink(repo, "t", ds[0]), ds[0].String()+"\n")
		}, nil, regstore.ErrCorruptLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				c.build(h)
				got, err := hSeq(h.tagOf(repo, "t").History())
				hCheckErr(t, err, c.wantErr, "History(t)")
				if c.wantErr == nil {
					assert.Equal(t, c.want, got, "History(t)")
				}
			})
		})
	}
}

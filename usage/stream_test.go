package usage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/regstore/regstore/usage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccountStreams: the two-pass API gives what Measure collects, one
// repository at a time or by name, and stops where its consumer does.
func TestAccountStreams(t *testing.T) {
	ctx := context.Background()
	for _, bk := range kitBackends {
		t.Run(bk.name, func(t *testing.T) {
			u := buildUsageTree(t, bk.load)
			want, err := usage.Measure(ctx, u.s)
			require.NoError(t, err)
			require.Len(t, want.Repositories, 2)

			a, err := usage.Account(ctx, u.s)
			require.NoError(t, err)
			assert.Equal(t, want.Totals, a.Totals())
			var got []usage.Repository
			for ru, err := range a.Repositories(ctx) {
				require.NoError(t, err)
				got = append(got, ru)
			}
			assert.Equal(t, want.Repositories, got)

			for _, wr := range want.Repositories {
				r, err := u.s.Repository(wr.Name)
				require.NoError(t, err)
				ru, err := a.Repository(ctx, r)
				require.NoError(t, err)
				assert.Equal(t, wr, ru, "Repository(%s)", wr.Name)
			}

			n := 0
			for _, err := range a.Repositories(ctx) {
				require.NoError(t, err)
				n++
				break
			}
			assert.Equal(t, 1, n, "the iterator stops when its consumer does")

			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			for _, err := range a.Repositories(cancelled) {
				assert.ErrorIs(t, err, context.Canceled)
			}
			_, err = usage.Account(cancelled, u.s)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}

// TestAccountRepositoryAddedLater: a repository pushed after the first pass
// counts its blobs as its own, or not at all when they are newer than the
// blob listing; the totals stay those of the first pass.
func TestAccountRepositoryAddedLater(t *testing.T) {
	ctx := context.Background()
	u := buildUsageTree(t, kitBackends[0].load)
	a, err := usage.Account(ctx, u.s)
	require.NoError(t, err)
	before := a.Totals()

	c := kitRepo(t, u.s, "c")
	// The same image as a's v1: every blob was listed. Its blobs count as
	// referenced by c alone unless two repositories referenced them in the
	// first pass (the base layer).
	regstoretest.Push(t, c, regstoretest.Image{Layers: []regstoretest.Layer{sizedLayer('B', 1000), sizedLayer('1', 100)}}, "v1")
	// A new image: its manifest was not listed, so the tag counts nothing.
	m := regstoretest.Push(t, c, regstoretest.Image{Layers: []regstoretest.Layer{sizedLayer('n', 50)}}, "new")
	ru, err := a.Repository(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, before, a.Totals())
	assert.Equal(t, "c", ru.Name)
	require.Len(t, ru.Tags, 2)
	assert.Equal(t, "new", ru.Tags[0].Name)
	assert.Equal(t, m.Digest(), ru.Tags[0].Digest)
	assert.Zero(t, ru.Tags[0].ReferencedBytes)
	assert.Equal(t, mc(u.img1)+1000+100, ru.ReferencedBytes)
	assert.Equal(t, mc(u.img1)+100, ru.UniqueBytes)
}

// ExampleAccount streams the accounting: the totals first, then one
// repository at a time, without holding them all.
func ExampleAccount() {
	ctx := context.Background()
	s, _ := regstore.Open(regstore.NewMemFS())
	for _, name := range []string{"app", "web"} {
		r, _ := s.Repository(name)
		img := regstoretest.Image{Layers: []regstoretest.Layer{sizedLayer('B', 1000), sizedLayer(name[0], 100)}}
		if _, err := regstoretest.PushImage(r, img, "latest"); err != nil {
			fmt.Println(err)
			return
		}
	}
	a, err := usage.Account(ctx, s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("blobs:", a.Totals().Blobs)
	for ru, err := range a.Repositories(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ru.Name, "shared:", ru.SharedBytes, "tags:", len(ru.Tags))
	}
	// Output:
	// blobs: 7
	// app shared: 1000 tags: 1
	// web shared: 1000 tags: 1
}

// TestAccountConcurrentReads: an Accounting is only read once made; under
// the race detector, two goroutines iterating it at once show it.
func TestAccountConcurrentReads(t *testing.T) {
	ctx := context.Background()
	u := buildUsageTree(t, kitBackends[0].load)
	want, err := usage.Measure(ctx, u.s)
	require.NoError(t, err)
	a, err := usage.Account(ctx, u.s)
	require.NoError(t, err)
	got := make([][]usage.Repository, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			for ru, err := range a.Repositories(ctx) {
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], ru)
			}
		})
	}
	wg.Wait()
	for i := range got {
		require.NoError(t, errs[i])
		assert.Equal(t, want.Repositories, got[i])
	}
}

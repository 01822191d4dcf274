package regstore_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/require"
)

// TestDirConcurrentCreateFreshTree: parallel blob writes into an empty
// tree, some of them failing (so that they remove the directories they
// made), never make a concurrent writer fail for a directory removed under
// it.
func TestDirConcurrentCreateFreshTree(t *testing.T) {
	for round := range 20 {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err)
		s, err := regstore.Open(d)
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range 16 {
			wg.Go(func() {
				content := []byte(fmt.Sprintf("round %d blob %d", round, i))
				want := digest.FromBytes(content)
				if i%2 == 1 {
					// A wrong expected digest: the write fails and cleans up.
					_, _ = s.PutBlob(bytes.NewReader(content), digest.FromString("other"), -1)
					return
				}
				_, errs[i] = s.PutBlob(bytes.NewReader(content), want, int64(len(content)))
			})
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d writer %d", round, i)
		}
		require.NoError(t, d.Close())
	}
}

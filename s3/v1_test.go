package s3_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConvertV1FromBucket: a v1 tree kept in a bucket (as docker-registry's
// s3 driver kept it) is read through the backend's fs.FS side and
// converted into a v2 tree in the same bucket.
func TestConvertV1FromBucket(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
	v1fs := newFS(t, uniqueRoot("v1"))
	tree, err := regstoretest.WriteV1Tree(v1fs, "registry")
	require.NoError(t, err)
	src, err := dockerv1.Open(v1fs, "registry")
	require.NoError(t, err)

	probs, err := src.Check(context.Background(), dockerv1.CheckOptions{Checksums: true})
	require.NoError(t, err)
	assert.Len(t, probs, 3)

	dst, err := regstore.Open(newFS(t, uniqueRoot("v2")))
	require.NoError(t, err)
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Stats.Converted)
	assert.Equal(t, 3, rep.Stats.Skipped)

	// The same digests as from memory.
	mem := regstore.NewMemFS()
	_, err = regstoretest.WriteV1Tree(mem, ".")
	require.NoError(t, err)
	msrc, err := dockerv1.Open(mem, ".")
	require.NoError(t, err)
	mdst, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	want, err := dockerv1.Convert(context.Background(), mdst, msrc, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	for i := range want.Tags {
		assert.Equal(t, want.Tags[i].Digest, rep.Tags[i].Digest, want.Tags[i].Repository+":"+want.Tags[i].Tag)
	}
	r, err := dst.Repository("myorg/app")
	require.NoError(t, err)
	tg, err := r.Tag("1.0")
	require.NoError(t, err)
	m, err := tg.Resolve()
	require.NoError(t, err)
	assert.Len(t, m.Layers(), len(tree.Chain(regstoretest.V1XZID))-1, "one empty layer")

	again, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, again.Stats.Unchanged)
}

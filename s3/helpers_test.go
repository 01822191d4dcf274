package s3_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
)

// pushImage pushes a small image whose content depends on seed.
func pushImage(t testing.TB, r *regstore.Repository, seed uint64, tags ...string) *regstore.Manifest {
	t.Helper()
	img := regstoretest.Image{Layers: []regstoretest.Layer{regstoretest.RandomLayer(seed, 1000), regstoretest.RandomLayer(seed+1000, 500)}}
	if seed%2 == 0 {
		img.MediaType = regstore.MediaTypeDockerManifest
	}
	return regstoretest.Push(t, r, img, tags...)
}

// pushIndex pushes an OCI index of children.
func pushIndex(t testing.TB, r *regstore.Repository, a, b *regstore.Manifest, tags ...string) *regstore.Manifest {
	t.Helper()
	return regstoretest.PushIndex(t, r, regstore.MediaTypeOCIIndex, []*regstore.Manifest{a, b}, tags...)
}

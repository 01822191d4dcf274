package regstore_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPushImage(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	r, err := s.Repository("team/app")
	require.NoError(t, err)

	// The default: OCI, empty config, tagged.
	m, err := r.PushImage(regstore.Image{Annotations: map[string]string{"a": "b"}}, "v1", "v2")
	require.NoError(t, err)
	var got v1.Manifest
	require.NoError(t, json.Unmarshal(m.Bytes(), &got))
	assert.Equal(t, 2, got.SchemaVersion)
	assert.Equal(t, regstore.MediaTypeOCIManifest, got.MediaType)
	assert.Equal(t, v1.MediaTypeEmptyJSON, got.Config.MediaType)
	assert.Equal(t, digest.FromString("{}"), got.Config.Digest)
	assert.Equal(t, []v1.Descriptor{}, got.Layers)
	assert.Equal(t, map[string]string{"a": "b"}, got.Annotations)
	for _, tag := range []string{"v1", "v2"} {
		tg, err := r.Tag(tag)
		require.NoError(t, err)
		d, err := tg.Digest()
		require.NoError(t, err)
		assert.Equal(t, m.Digest(), d)
	}
	// Same input, same digest.
	again, err := r.PushImage(regstore.Image{Annotations: map[string]string{"a": "b"}})
	require.NoError(t, err)
	assert.Equal(t, m.Digest(), again.Digest())

	// Layers with their own media type; a referrer.
	sig, err := r.PushImage(regstore.Image{ArtifactType: "application/vnd.example.sig", Subject: ptrTo(m.Descriptor()),
		Layers: []regstore.ImageLayer{{Content: strings.NewReader("sig"), MediaType: "application/vnd.example.sig.v1"}}})
	require.NoError(t, err)
	subj, ok := sig.Subject()
	assert.True(t, ok)
	assert.Equal(t, m.Digest(), subj.Digest)
	assert.Equal(t, "application/vnd.example.sig.v1", sig.Layers()[0].MediaType)
	b, err := r.Blob(sig.Layers()[0].Digest)
	require.NoError(t, err)
	data, err := b.ReadAll(100)
	require.NoError(t, err)
	assert.Equal(t, "sig", string(data))

	for name, img := range map[string]regstore.Image{
		"docker without config": {MediaType: regstore.MediaTypeDockerManifest},
		"docker with subject":   {MediaType: regstore.MediaTypeDockerManifest, Config: []byte("{}"), Subject: ptrTo(m.Descriptor())},
		"an index type":         {MediaType: regstore.MediaTypeOCIIndex},
		"a layer of nothing":    {Layers: []regstore.ImageLayer{{}}},
	} {
		_, err := r.PushImage(img)
		assert.ErrorIs(t, err, regstore.ErrManifestInvalid, name)
	}
	_, err = r.PushImage(regstore.Image{}, "bad tag!")
	assert.ErrorIs(t, err, regstore.ErrInvalidTag)
}

func ptrTo[T any](v T) *T { return &v }

func TestOpenPath(t *testing.T) {
	root := t.TempDir()
	s, err := regstore.OpenPath(root)
	require.NoError(t, err)
	r, err := s.Repository("a")
	require.NoError(t, err)
	m, err := r.PushImage(regstore.Image{}, "v1")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice")
	assert.DirExists(t, filepath.Join(root, "docker", "registry", "v2", "repositories", "a"))

	// The v2 folder itself is found to be one.
	v2, err := regstore.OpenPath(filepath.Join(root, "docker", "registry", "v2"), regstore.ReadOnly())
	require.NoError(t, err)
	defer v2.Close()
	assert.Equal(t, ".", v2.Layout().Root())
	r2, err := v2.Repository("a")
	require.NoError(t, err)
	got, err := r2.Manifest(m.Digest())
	require.NoError(t, err)
	assert.Equal(t, m.Bytes(), got.Bytes())
	_, err = r2.PushImage(regstore.Image{})
	assert.ErrorIs(t, err, errors.ErrUnsupported, "options apply")

	_, err = regstore.OpenPath(filepath.Join(root, "missing"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	f := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = regstore.OpenPath(f)
	assert.ErrorIs(t, err, fs.ErrInvalid)

	// A store made by Open does not close a backend it does not own.
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	defer d.Close()
	s2, err := regstore.Open(d)
	require.NoError(t, err)
	require.NoError(t, s2.Close())
	_, err = s2.Blob(m.Digest())
	assert.NoError(t, err, "the backend is still open")
}

func TestBlobReadAllCorrupt(t *testing.T) {
	fsys := regstore.NewMemFS()
	s, err := regstore.Open(fsys)
	require.NoError(t, err)
	b, err := s.PutBlob(strings.NewReader("hello"), "", -1)
	require.NoError(t, err)
	w, err := fsys.Create(b.Path())
	require.NoError(t, err)
	_, err = w.Write([]byte("jello"))
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	_, err = b.ReadAll(10)
	assert.ErrorIs(t, err, regstore.ErrDigestMismatch)
	_, err = b.ReadAll(4)
	assert.ErrorIs(t, err, regstore.ErrBlobTooLarge)
}

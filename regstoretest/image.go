package regstoretest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
)

// Docker media types of image content.
const (
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Layer is one image layer: a gzipped tar holding files.
type Layer struct {
	Compressed []byte        // the blob
	DiffID     digest.Digest // digest of the uncompressed tar
}

// NewLayer returns a layer holding the given files (name → content). The
// bytes are deterministic: equal files give equal digests.
func NewLayer(files map[string]string) Layer {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, name := range sortedKeys(files) {
		body := files[name]
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // no name, no mtime: deterministic
	_, _ = zw.Write(tarBuf.Bytes())
	_ = zw.Close()
	return Layer{Compressed: gz.Bytes(), DiffID: digest.FromBytes(tarBuf.Bytes())}
}

// RandomLayer returns a layer with one file of size random bytes from seed.
func RandomLayer(seed uint64, size int) Layer {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return NewLayer(map[string]string{fmt.Sprintf("file-%d", seed): string(b)})
}

// Image describes an image to push.
type Image struct {
	// MediaType is the manifest type: regstore.MediaTypeDockerManifest or
	// regstore.MediaTypeOCIManifest (the default).
	MediaType string
	Layers    []Layer
	// Platform goes into the config (default linux/amd64).
	OS, Architecture string
	// ArtifactType, Subject and Annotations go into the manifest (OCI).
	ArtifactType string
	Subject      *v1.Descriptor
	Annotations  map[string]string
	// Config, when set, is used as the config blob verbatim (with
	// ConfigMediaType), instead of an image config built from the layers.
	Config          []byte
	ConfigMediaType string
}

// Names: PushX takes a testing.TB and fails the test on an error; WriteX
// does the same and returns the error instead, for code that is not a test
// (fixtures, generators, examples) or a test that expects one.

// Push stores the image's blobs and manifest in r and tags it, failing the
// test on an error. It is [WriteImage] for tests.
func Push(t testing.TB, r *regstore.Repository, img Image, tags ...string) *regstore.Manifest {
	t.Helper()
	m, err := WriteImage(r, img, tags...)
	if err != nil {
		t.Fatalf("regstoretest.Push(%s): %v", r.Name(), err)
	}
	return m
}

// PushImage is the old name of [WriteImage].
//
// Deprecated: use WriteImage (or Push in a test).
func PushImage(r *regstore.Repository, img Image, tags ...string) (*regstore.Manifest, error) {
	return WriteImage(r, img, tags...)
}

// WriteImage stores the image's blobs and manifest in r and tags it. The
// manifest's bytes are deterministic: the same image gives the same digest.
func WriteImage(r *regstore.Repository, img Image, tags ...string) (*regstore.Manifest, error) {
	mt := img.MediaType
	if mt == "" {
		mt = regstore.MediaTypeOCIManifest
	}
	layerMT, configMT := v1.MediaTypeImageLayerGzip, v1.MediaTypeImageConfig
	if mt == regstore.MediaTypeDockerManifest {
		layerMT, configMT = MediaTypeDockerLayer, MediaTypeDockerConfig
	}
	config := img.Config
	if config == nil {
		osName, arch := img.OS, img.Architecture
		if osName == "" {
			osName = "linux"
		}
		if arch == "" {
			arch = "amd64"
		}
		cfg := v1.Image{Platform: v1.Platform{OS: osName, Architecture: arch}, RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
		for _, l := range img.Layers {
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
		}
		var err error
		if config, err = json.Marshal(cfg); err != nil {
			return nil, err
		}
	} else if img.ConfigMediaType != "" {
		configMT = img.ConfigMediaType
	}
	cb, err := r.PutBlob(bytes.NewReader(config), "", -1)
	if err != nil {
		return nil, err
	}
	man := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType,omitempty"`
		Config        v1.Descriptor     `json:"config"`
		Layers        []v1.Descriptor   `json:"layers"`
		Subject       *v1.Descriptor    `json:"subject,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{SchemaVersion: 2, MediaType: mt, ArtifactType: img.ArtifactType, Subject: img.Subject, Annotations: img.Annotations,
		Config: v1.Descriptor{MediaType: configMT, Digest: cb.Digest(), Size: cb.Size()}, Layers: []v1.Descriptor{}}
	for _, l := range img.Layers {
		b, err := r.PutBlob(bytes.NewReader(l.Compressed), "", -1)
		if err != nil {
			return nil, err
		}
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: layerMT, Digest: b.Digest(), Size: b.Size()})
	}
	raw, err := json.MarshalIndent(man, "", "   ")
	if err != nil {
		return nil, err
	}
	return r.PutManifest(mt, raw, tags...)
}

// PushIndex is [WriteIndex] for tests: it fails the test on an error.
func PushIndex(t testing.TB, r *regstore.Repository, mediaType string, children []*regstore.Manifest, tags ...string) *regstore.Manifest {
	t.Helper()
	m, err := WriteIndex(r, mediaType, children, tags...)
	if err != nil {
		t.Fatalf("regstoretest.PushIndex(%s): %v", r.Name(), err)
	}
	return m
}

// WriteIndex stores an index (regstore.MediaTypeOCIIndex, the default) or a
// Docker manifest list of children, which must already be in r, and tags it.
// Each child's platform is read from its config when it has one.
func WriteIndex(r *regstore.Repository, mediaType string, children []*regstore.Manifest, tags ...string) (*regstore.Manifest, error) {
	if mediaType == "" {
		mediaType = regstore.MediaTypeOCIIndex
	}
	idx := struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     []v1.Descriptor `json:"manifests"`
	}{SchemaVersion: 2, MediaType: mediaType, Manifests: []v1.Descriptor{}}
	for _, c := range children {
		d := c.Descriptor()
		d.Platform = platformOf(r, c)
		idx.Manifests = append(idx.Manifests, d)
	}
	raw, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return nil, err
	}
	return r.PutManifest(mediaType, raw, tags...)
}

func platformOf(r *regstore.Repository, m *regstore.Manifest) *v1.Platform {
	cd, ok := m.Config()
	if !ok {
		return nil
	}
	b, err := r.Blob(cd.Digest)
	if err != nil {
		return nil
	}
	f, err := b.Open()
	if err != nil {
		return nil
	}
	defer f.Close()
	var cfg v1.Image
	if json.NewDecoder(f).Decode(&cfg) != nil || cfg.OS == "" {
		return nil
	}
	return &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}
}

// Reader returns a reader of the layer's blob.
func (l Layer) Reader() *bytes.Reader { return bytes.NewReader(l.Compressed) }

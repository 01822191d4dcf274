package regstore

import (
	"encoding/json"
	"fmt"
	"iter"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize is the largest manifest the registry accepts or reads:
// 4 MiB.
const MaxManifestSize = 4 << 20

// Manifest media types the registry knows.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = v1.MediaTypeImageManifest
	MediaTypeOCIIndex           = v1.MediaTypeImageIndex
	// MediaTypeDockerSchema1Signed is what registry 2.x serves stored
	// schema1 manifests as. They cannot be pushed to v3, nor read by it.
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Docker media types of image content (docker/distribution's schema2
// names), which docker push and docker save write into manifests.
const (
	// MediaTypeDockerConfig is an image config.
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	// MediaTypeDockerLayer is a gzip-compressed layer tar, as docker push
	// writes it.
	MediaTypeDockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeDockerUncompressedLayer is an uncompressed layer tar, as
	// docker save writes it.
	MediaTypeDockerUncompressedLayer = "application/vnd.docker.image.rootfs.diff.tar"
)

// Manifest is one manifest's bytes, exactly as stored, with what was
// parsed from them. Media types are not stored on disk: they are detected
// from the JSON as the registry does on a GET (the "mediaType" field; without
// one, an OCI index when there is a "manifests" field and an OCI manifest
// otherwise). Legacy schema1 manifests are read too, well enough to list the
// layers they use.
type Manifest struct {
	desc    v1.Descriptor
	raw     []byte
	content manifestContent
}

// manifestContent is the union of the fields of every manifest format that
// matter to storage.
type manifestContent struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"` // schema1
}

// ParseManifest parses manifest bytes as the registry would read them from
// storage, detecting the media type. It fails with an error wrapping
// [ErrManifestTooLarge] over [MaxManifestSize] and [ErrManifestInvalid] for
// anything the registry could not read (besides schema1, which is read).
func ParseManifest(raw []byte) (*Manifest, error) {
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrManifestTooLarge, len(raw), MaxManifestSize)
	}
	var c manifestContent
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifestInvalid, err)
	}
	mt, err := c.detectMediaType()
	if err != nil {
		return nil, err
	}
	if err := c.validate(mt); err != nil {
		return nil, err
	}
	if mt == MediaTypeDockerSchema1Signed {
		// Only fsLayers mean anything in schema1; fields of other schemas
		// (JSON keys match in any case) are neither checked nor used.
		c.Config, c.Layers, c.Manifests, c.Subject = nil, nil, nil, nil
	}
	return &Manifest{
		desc: v1.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
		raw:  raw,
		// The slices in c are never handed out unless cloned.
		content: c,
	}, nil
}

func (c *manifestContent) detectMediaType() (string, error) {
	switch c.SchemaVersion {
	case 1:
		return MediaTypeDockerSchema1Signed, nil
	case 2:
	default:
		return "", fmt.Errorf("%w: unsupported schemaVersion %d", ErrManifestInvalid, c.SchemaVersion)
	}
	switch c.MediaType {
	case MediaTypeDockerManifest, MediaTypeDockerManifestList, MediaTypeOCIManifest, MediaTypeOCIIndex:
		return c.MediaType, nil
	case "":
		if c.Manifests != nil {
			return MediaTypeOCIIndex, nil
		}
		return MediaTypeOCIManifest, nil
	}
	return "", fmt.Errorf("%w: unrecognized manifest media type %q", ErrManifestInvalid, c.MediaType)
}

// validate checks the shape the registry's unmarshallers require, and that
// every digest is valid (digests become paths).
func (c *manifestContent) validate(mt string) error {
	var descs []v1.Descriptor
	switch mt {
	case MediaTypeDockerManifest, MediaTypeOCIManifest:
		if c.Config == nil {
			return fmt.Errorf("%w: %s has no config", ErrManifestInvalid, mt)
		}
		if mt == MediaTypeOCIManifest && c.Manifests != nil {
			return fmt.Errorf("%w: OCI manifest has a manifests field", ErrManifestInvalid)
		}
		descs = append(append(descs, *c.Config), c.Layers...)
	case MediaTypeDockerManifestList, MediaTypeOCIIndex:
		descs = c.Manifests
	case MediaTypeDockerSchema1Signed:
		for _, l := range c.FSLayers {
			if err := ValidateDigest(l.BlobSum); err != nil {
				return fmt.Errorf("%w: fsLayers: %w", ErrManifestInvalid, err)
			}
		}
	}
	if c.Subject != nil {
		descs = append(descs, *c.Subject)
	}
	for _, d := range descs {
		if err := ValidateDigest(d.Digest); err != nil {
			return fmt.Errorf("%w: %w", ErrManifestInvalid, err)
		}
	}
	return nil
}

// Digest is the sha256 digest of the manifest's bytes.
func (m *Manifest) Digest() digest.Digest { return m.desc.Digest }

// MediaType is the detected media type.
func (m *Manifest) MediaType() string { return m.desc.MediaType }

// Size is the length of the manifest's bytes.
func (m *Manifest) Size() int64 { return m.desc.Size }

// Descriptor describes the manifest (media type, digest, size).
func (m *Manifest) Descriptor() v1.Descriptor { return m.desc }

// Bytes returns the manifest's bytes exactly as stored. The caller must not
// modify them.
func (m *Manifest) Bytes() []byte { return m.raw }

// IsIndex reports whether the manifest is a Docker manifest list or an OCI
// index, whose references are other manifests.
func (m *Manifest) IsIndex() bool {
	return m.desc.MediaType == MediaTypeDockerManifestList || m.desc.MediaType == MediaTypeOCIIndex
}

// ArtifactType is the manifest's artifactType field, if any.
func (m *Manifest) ArtifactType() string { return m.content.ArtifactType }

// Annotations returns a copy of the manifest's annotations.
func (m *Manifest) Annotations() map[string]string {
	if m.content.Annotations == nil {
		return nil
	}
	out := make(map[string]string, len(m.content.Annotations))
	for k, v := range m.content.Annotations {
		out[k] = v
	}
	return out
}

// Config is the image configuration blob, for image manifests.
func (m *Manifest) Config() (v1.Descriptor, bool) {
	if m.content.Config == nil || m.IsIndex() {
		return v1.Descriptor{}, false
	}
	return *m.content.Config, true
}

// Layers are the layer blobs of an image manifest, in order. For schema1
// manifests they are the fsLayers' blob sums, first use of each only, with
// media type and size unknown.
func (m *Manifest) Layers() []v1.Descriptor {
	if m.desc.MediaType == MediaTypeDockerSchema1Signed {
		var out []v1.Descriptor
		seen := map[digest.Digest]bool{}
		for _, l := range m.content.FSLayers {
			if !seen[l.BlobSum] {
				seen[l.BlobSum] = true
				out = append(out, v1.Descriptor{Digest: l.BlobSum})
			}
		}
		return out
	}
	if m.IsIndex() {
		return nil
	}
	return append([]v1.Descriptor(nil), m.content.Layers...)
}

// Children are the manifests an index or manifest list refers to.
func (m *Manifest) Children() []v1.Descriptor {
	if !m.IsIndex() {
		return nil
	}
	return append([]v1.Descriptor(nil), m.content.Manifests...)
}

// Subject is the manifest this one refers to as a referrer (a signature,
// an SBOM), if any.
func (m *Manifest) Subject() (v1.Descriptor, bool) {
	if m.content.Subject == nil {
		return v1.Descriptor{}, false
	}
	return *m.content.Subject, true
}

// Blobs yields the blobs the manifest needs linked in its repository: the
// config, then the layers. Descriptors with URLs (foreign or
// non-distributable layers) are included; see [Repository.PutManifest].
func (m *Manifest) Blobs() iter.Seq[v1.Descriptor] {
	return func(yield func(v1.Descriptor) bool) {
		if c, ok := m.Config(); ok && !yield(c) {
			return
		}
		for _, l := range m.Layers() {
			if !yield(l) {
				return
			}
		}
	}
}

// References yields every descriptor the manifest refers to: config,
// layers, child manifests, then subject.
func (m *Manifest) References() iter.Seq[v1.Descriptor] {
	return func(yield func(v1.Descriptor) bool) {
		for d := range m.Blobs() {
			if !yield(d) {
				return
			}
		}
		for _, c := range m.Children() {
			if !yield(c) {
				return
			}
		}
		if s, ok := m.Subject(); ok {
			yield(s)
		}
	}
}

package regstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is what [Repository.PushImage] writes: a config and layers, in an
// image manifest it builds. The zero value is an OCI image with an empty
// config and no layers.
type Image struct {
	// MediaType is the manifest's: [MediaTypeOCIManifest] (the default) or
	// [MediaTypeDockerManifest] (Docker schema 2, as "docker push" writes).
	MediaType string
	// Config is the image configuration JSON. Nil means the OCI empty
	// config "{}" (OCI images only; Docker manifests need a config).
	Config []byte
	// ConfigMediaType defaults to the OCI image config type, or
	// [MediaTypeDockerConfig] for a Docker manifest, or the OCI empty
	// type when Config is nil.
	ConfigMediaType string
	// Layers are written in order.
	Layers []ImageLayer
	// ArtifactType, Annotations and Subject go into an OCI manifest as
	// they are (a Docker manifest has no such fields).
	ArtifactType string
	Annotations  map[string]string
	Subject      *v1.Descriptor
}

// ImageLayer is one layer of an [Image]: its content as stored (already
// compressed, if it is) and its media type.
type ImageLayer struct {
	Content io.Reader
	// MediaType defaults to the gzipped tar layer type of the manifest's
	// format (v1.MediaTypeImageLayerGzip or [MediaTypeDockerLayer]).
	MediaType string
	// Annotations go into the layer's descriptor (OCI only).
	Annotations map[string]string
}

// LayerBytes is an [ImageLayer] of content held in memory, with the
// default media type.
func LayerBytes(content []byte) ImageLayer { return ImageLayer{Content: bytes.NewReader(content)} }

// PushImage writes an image as a client's push does: the config and each
// layer as blobs of the repository (hashed while written; content already
// in the store is only linked), then the manifest it builds for them, then
// the tags. It returns the manifest. The manifest is refused before
// anything is written when it could not be pushed to a registry (a Docker
// manifest without a config, or with OCI-only fields): such errors wrap
// [ErrManifestInvalid].
func (r *Repository) PushImage(img Image, tags ...string) (*Manifest, error) {
	mt := img.MediaType
	if mt == "" {
		mt = MediaTypeOCIManifest
	}
	docker := mt == MediaTypeDockerManifest
	invalid := func(format string, args ...any) error {
		return &Error{Op: "push image", Repository: r.name, Err: fmt.Errorf("%w: "+format, append([]any{ErrManifestInvalid}, args...)...)}
	}
	switch {
	case mt != MediaTypeOCIManifest && !docker:
		return nil, invalid("media type %q is not an image manifest's (want %s or %s)", mt, MediaTypeOCIManifest, MediaTypeDockerManifest)
	case docker && img.Config == nil:
		return nil, invalid("a Docker manifest needs a config")
	case docker && (img.ArtifactType != "" || img.Annotations != nil || img.Subject != nil):
		return nil, invalid("a Docker manifest has no artifactType, annotations or subject")
	}
	for _, tag := range tags {
		if err := ValidateTag(tag); err != nil {
			return nil, &Error{Op: "push image", Repository: r.name, Reference: tag, Err: err}
		}
	}
	config, configType := img.Config, img.ConfigMediaType
	switch {
	case config == nil:
		config = []byte("{}")
		if configType == "" {
			configType = v1.MediaTypeEmptyJSON
		}
	case configType == "" && docker:
		configType = MediaTypeDockerConfig
	case configType == "":
		configType = v1.MediaTypeImageConfig
	}
	cb, err := r.PutBlob(bytes.NewReader(config), "", int64(len(config)))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{MediaType: mt, ArtifactType: img.ArtifactType, Annotations: img.Annotations, Subject: img.Subject,
		Config: v1.Descriptor{MediaType: configType, Digest: cb.Digest(), Size: cb.Size()}, Layers: []v1.Descriptor{}}
	m.SchemaVersion = 2
	for i, l := range img.Layers {
		if l.Content == nil {
			return nil, invalid("layer %d has no content", i)
		}
		lt := l.MediaType
		switch {
		case lt != "":
		case docker:
			lt = MediaTypeDockerLayer
		default:
			lt = v1.MediaTypeImageLayerGzip
		}
		if docker && l.Annotations != nil {
			return nil, invalid("a Docker manifest's layers have no annotations")
		}
		b, err := r.PutBlob(l.Content, "", -1)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: lt, Digest: b.Digest(), Size: b.Size(), Annotations: l.Annotations})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, &Error{Op: "push image", Repository: r.name, Err: err}
	}
	return r.PutManifest(mt, raw, tags...)
}

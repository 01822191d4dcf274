package regstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Blob sums of hSchema1: the layer, and the empty layer schema1 images
// repeat for every metadata-only history entry.
const (
	hSchema1Layer = "sha256:d4c3c94e5e10ed15503bda7e145a3652ee935c0b2e9de9b1e98df5e13e7d3f0b"
	hSchema1Empty = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
)

// hSchema1 is a schema1 manifest as registry 2.5 to 2.8 store it: the
// canonical payload, unsigned (the registry re-signs it on read), with the
// blob sums top layer first and repeated.
const hSchema1 = `{
   "schemaVersion": 1,
   "name": "library/old",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      {
         "blobSum": "` + hSchema1Empty + `"
      },
      {
         "blobSum": "` + hSchema1Layer + `"
      },
      {
         "blobSum": "` + hSchema1Empty + `"
      }
   ],
   "history": [
      {
         "v1Compatibility": "{\"id\":\"3\",\"parent\":\"2\",\"container_config\":{\"Cmd\":[\"/bin/sh\"]}}"
      },
      {
         "v1Compatibility": "{\"id\":\"2\",\"parent\":\"1\"}"
      },
      {
         "v1Compatibility": "{\"id\":\"1\"}"
      }
   ]
}`

// TestParseManifest checks media type detection and the shapes the
// registry refuses.
func TestParseManifest(t *testing.T) {
	img := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	cfg := hDescOf("application/vnd.oci.image.config.v1+json", hConfig)
	// padTo pads valid JSON with trailing white space to n bytes.
	padTo := func(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
	for _, c := range []struct {
		name    string
		raw     string
		want    string // media type
		wantErr error
	}{
		{"Docker manifest", hImage(regstore.MediaTypeDockerManifest, hConfig, hLayerA), regstore.MediaTypeDockerManifest, nil},
		{"Docker manifest list", hIndex(regstore.MediaTypeDockerManifestList, img), regstore.MediaTypeDockerManifestList, nil},
		{"OCI manifest", img, regstore.MediaTypeOCIManifest, nil},
		{"OCI manifest without mediaType", hImage("", hConfig, hLayerA), regstore.MediaTypeOCIManifest, nil},
		{"OCI index", hIndex(regstore.MediaTypeOCIIndex, img), regstore.MediaTypeOCIIndex, nil},
		{"OCI index without mediaType, detected by manifests", hIndex("", img), regstore.MediaTypeOCIIndex, nil},
		{"empty OCI index without mediaType", hIndex(""), regstore.MediaTypeOCIIndex, nil},
		{"schema1 as registry 2.x stores it", hSchema1, regstore.MediaTypeDockerSchema1Signed, nil},
		{"artifact with an empty config", hJSON(regstore.MediaTypeOCIManifest, map[string]any{
			"artifactType": "application/vnd.example", "config": hDescOf(v1.MediaTypeEmptyJSON, "{}"), "layers": []hDesc{}}),
			regstore.MediaTypeOCIManifest, nil},
		{"exactly 4 MiB", padTo(img, regstore.MaxManifestSize), regstore.MediaTypeOCIManifest, nil},

		{"4 MiB and one byte", padTo(img, regstore.MaxManifestSize+1), "", regstore.ErrManifestTooLarge},
		{"unknown mediaType", hImage("application/vnd.example+json", hConfig), "", regstore.ErrManifestInvalid},
		{"schema1 media type with schemaVersion 2", hImage(regstore.MediaTypeDockerSchema1Signed, hConfig), "", regstore.ErrManifestInvalid},
		{"schemaVersion 3", strings.Replace(img, `"schemaVersion":2`, `"schemaVersion":3`, 1), "", regstore.ErrManifestInvalid},
		{"no schemaVersion", `{"mediaType":"` + regstore.MediaTypeOCIManifest + `","config":{}}`, "", regstore.ErrManifestInvalid},
		{"schemaVersion as a string", `{"schemaVersion":"2"}`, "", regstore.ErrManifestInvalid},
		{"OCI manifest with manifests", hJSON(regstore.MediaTypeOCIManifest, map[string]any{"config": cfg, "manifests": []hDesc{}}), "", regstore.ErrManifestInvalid},
		{"Docker manifest without config", hJSON(regstore.MediaTypeDockerManifest, map[string]any{"layers": []hDesc{}}), "", regstore.ErrManifestInvalid},
		{"OCI manifest without config", hJSON("", map[string]any{"layers": []hDesc{}}), "", regstore.ErrManifestInvalid},
		{"invalid config digest", hJSON("", map[string]any{"config": hDesc{Digest: "sha256:../../../etc"}}), "", regstore.ErrManifestInvalid},
		{"invalid child digest", hJSON(regstore.MediaTypeOCIIndex, map[string]any{"manifests": []hDesc{{Digest: "md5:x"}}}), "", regstore.ErrManifestInvalid},
		{"invalid schema1 blobSum", `{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:AB"}]}`, "", regstore.ErrManifestInvalid},
		{"not JSON", "schemaVersion: 2", "", regstore.ErrManifestInvalid},
		{"JSON null", "null", "", regstore.ErrManifestInvalid},
		{"empty", "", "", regstore.ErrManifestInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := regstore.ParseManifest([]byte(c.raw))
			if c.wantErr != nil {
				assert.ErrorIs(t, err, c.wantErr, "ParseManifest(%s)", c.name)
				assert.ErrorIs(t, err, regstore.ErrManifestInvalid, "ParseManifest(%s): every refusal is ErrManifestInvalid", c.name)
				if !errors.Is(c.wantErr, regstore.ErrManifestTooLarge) {
					assert.NotErrorIs(t, err, regstore.ErrManifestTooLarge, "ParseManifest(%s)", c.name)
				}
				assert.Nil(t, m)
				return
			}
			require.NoError(t, err, "ParseManifest(%s)", c.name)
			assert.Equal(t, c.want, m.MediaType(), "ParseManifest(%s).MediaType()", c.name)
			assert.Equal(t, digest.FromString(c.raw), m.Digest(), "ParseManifest(%s).Digest()", c.name)
			assert.Equal(t, int64(len(c.raw)), m.Size(), "ParseManifest(%s).Size()", c.name)
			assert.Equal(t, c.raw, string(m.Bytes()), "ParseManifest(%s).Bytes() are verbatim", c.name)
			assert.Equal(t, v1.Descriptor{MediaType: c.want, Digest: m.Digest(), Size: m.Size()}, m.Descriptor())
		})
	}
}

// TestManifestReferences checks what each kind of manifest refers to.
func TestManifestReferences(t *testing.T) {
	img := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA, hLayerB, hLayerA)
	subject := hDescOf(regstore.MediaTypeOCIManifest, img)
	sig := hJSON(regstore.MediaTypeOCIManifest, map[string]any{
		"artifactType": "application/vnd.example.sig",
		"config":       hDescOf(v1.MediaTypeEmptyJSON, "{}"),
		"layers":       []hDesc{hDescOf("application/vnd.example.sig", "signature")},
		"subject":      subject,
		"annotations":  map[string]string{"k": "v"},
	})
	digests := func(ds []v1.Descriptor) []digest.Digest {
		var out []digest.Digest
		for _, d := range ds {
			out = append(out, d.Digest)
		}
		return out
	}
	seqDigests := func(seq func(func(v1.Descriptor) bool)) []digest.Digest {
		var out []digest.Digest
		for d := range seq {
			out = append(out, d.Digest)
		}
		return out
	}
	cD, aD, bD := digest.FromString(hConfig), digest.FromString(hLayerA), digest.FromString(hLayerB)
	for _, c := range []struct {
		name                     string
		raw                      string
		config                   digest.Digest
		layers, children, blobs  []digest.Digest
		refs                     []digest.Digest
		index                    bool
		subject                  digest.Digest
		artifactType, annotation string
	}{
		{name: "image", raw: img, config: cD, layers: []digest.Digest{aD, bD, aD},
			blobs: []digest.Digest{cD, aD, bD, aD}, refs: []digest.Digest{cD, aD, bD, aD}},
		{name: "index", raw: hIndex("", img, sig), index: true, children: []digest.Digest{digest.FromString(img), digest.FromString(sig)},
			refs: []digest.Digest{digest.FromString(img), digest.FromString(sig)}},
		{name: "referrer", raw: sig, config: digest.FromString("{}"), layers: []digest.Digest{digest.FromString("signature")},
			blobs:   []digest.Digest{digest.FromString("{}"), digest.FromString("signature")},
			refs:    []digest.Digest{digest.FromString("{}"), digest.FromString("signature"), subject.Digest},
			subject: subject.Digest, artifactType: "application/vnd.example.sig", annotation: "v"},
		{name: "schema1: fsLayers deduplicated, first use first", raw: hSchema1,
			layers: []digest.Digest{hSchema1Empty, hSchema1Layer}, blobs: []digest.Digest{hSchema1Empty, hSchema1Layer},
			refs: []digest.Digest{hSchema1Empty, hSchema1Layer}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := regstore.ParseManifest([]byte(c.raw))
			require.NoError(t, err, "ParseManifest(%s)", c.name)
			cfg, ok := m.Config()
			assert.Equal(t, c.config != "", ok, "Config() ok")
			assert.Equal(t, c.config, cfg.Digest, "Config()")
			assert.Equal(t, c.layers, digests(m.Layers()), "Layers()")
			assert.Equal(t, c.children, digests(m.Children()), "Children()")
			assert.Equal(t, c.blobs, seqDigests(m.Blobs()), "Blobs()")
			assert.Equal(t, c.refs, seqDigests(m.References()), "References()")
			assert.Equal(t, c.index, m.IsIndex(), "IsIndex()")
			s, ok := m.Subject()
			assert.Equal(t, c.subject != "", ok, "Subject() ok")
			assert.Equal(t, c.subject, s.Digest, "Subject()")
			assert.Equal(t, c.artifactType, m.ArtifactType(), "ArtifactType()")
			assert.Equal(t, c.annotation, m.Annotations()["k"], "Annotations()")

			// Results are copies.
			if ls := m.Layers(); len(ls) > 0 {
				ls[0].Digest = "changed"
				assert.NotEqual(t, digest.Digest("changed"), m.Layers()[0].Digest, "Layers() returns a copy")
			}
			if a := m.Annotations(); a != nil {
				a["k"] = "changed"
				assert.Equal(t, c.annotation, m.Annotations()["k"], "Annotations() returns a copy")
			}
			// Early break of the sequences.
			for range m.Blobs() {
				break
			}
			for range m.References() {
				break
			}
		})
	}
}

// TestManifestFromTree reads manifests of every kind from hand-built trees
// through a repository, including a schema1 manifest left by registry 2.8.
func TestManifestFromTree(t *testing.T) {
	const repo = "library/old"
	img := hImage(regstore.MediaTypeOCIManifest, hConfig, hLayerA)
	for _, c := range []struct {
		name    string
		raw     string
		want    string
		wantErr error
	}{
		{"Docker manifest", hImage(regstore.MediaTypeDockerManifest, hConfig, hLayerA), regstore.MediaTypeDockerManifest, nil},
		{"Docker manifest list", hIndex(regstore.MediaTypeDockerManifestList, img), regstore.MediaTypeDockerManifestList, nil},
		{"OCI manifest", img, regstore.MediaTypeOCIManifest, nil},
		{"OCI manifest without mediaType", hImage("", hConfig, hLayerA), regstore.MediaTypeOCIManifest, nil},
		{"OCI index without mediaType", hIndex("", img), regstore.MediaTypeOCIIndex, nil},
		{"schema1 from a 2.8 tree", hSchema1, regstore.MediaTypeDockerSchema1Signed, nil},
		{"unknown mediaType", hImage("application/vnd.example+json", hConfig), "", regstore.ErrManifestInvalid},
		{"schemaVersion 3", strings.Replace(img, `"schemaVersion":2`, `"schemaVersion":3`, 1), "", regstore.ErrManifestInvalid},
		{"not JSON", "<html>", "", regstore.ErrManifestInvalid},
		{"over 4 MiB", img + strings.Repeat("\n", regstore.MaxManifestSize), "", regstore.ErrManifestTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			hEach(t, func(t *testing.T, h *hTree) {
				d := h.manifest(repo, c.raw, "latest")
				m, err := h.repo(repo).Manifest(d)
				hCheckErr(t, err, c.wantErr, "Manifest(%s)", d)
				tm, terr := h.tagOf(repo, "latest").Resolve()
				hCheckErr(t, terr, c.wantErr, "Resolve(latest)")
				if c.wantErr != nil {
					var e *regstore.Error
					if assert.ErrorAs(t, err, &e) {
						assert.Equal(t, repo, e.Repository, "Error.Repository")
						assert.Equal(t, h.l.BlobData(d), e.Path, "Error.Path")
					}
					return
				}
				assert.Equal(t, c.want, m.MediaType(), "Manifest(%s).MediaType()", d)
				assert.Equal(t, c.raw, string(m.Bytes()), "Manifest(%s).Bytes()", d)
				assert.Equal(t, d, tm.Digest(), "Resolve(latest).Digest()")
				mans, err := hSeq(h.repo(repo).Manifests())
				require.NoError(t, err)
				assert.Equal(t, []digest.Digest{d}, mans, "Manifests()")
			})
		})
	}
	t.Run("schema1 layers", func(t *testing.T) {
		hEach(t, func(t *testing.T, h *hTree) {
			d := h.manifest(repo, hSchema1, "latest")
			m, err := h.repo(repo).Manifest(d)
			require.NoError(t, err, "Manifest(%s)", d)
			var got []digest.Digest
			for _, l := range m.Layers() {
				got = append(got, l.Digest)
			}
			assert.Equal(t, []digest.Digest{hSchema1Empty, hSchema1Layer}, got, "Layers() of a schema1 manifest")
		})
	})
}

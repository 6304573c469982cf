package attest

import (
	"encoding/json"
	"fmt"

	"github.com/builder-dev/builder/platform"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The media types and annotations of BuildKit's attestation layout
// (docs/attestations/attestation-storage.md in BuildKit).
const (
	// MediaTypeInToto is the media type of a layer holding one in-toto
	// statement.
	MediaTypeInToto = "application/vnd.in-toto+json"
	// ArtifactTypeAttestation is the artifactType of an attestation manifest.
	ArtifactTypeAttestation = "application/vnd.docker.attestation.manifest.v1+json"
	// AnnotationPredicateType names a layer's predicate type.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// AnnotationReferenceType marks an index entry as an attestation manifest.
	AnnotationReferenceType = "vnd.docker.reference.type"
	// AnnotationReferenceDigest names the image manifest it attests.
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
)

// emptyJSON is the OCI empty config, "{}", which BuildKit embeds in the
// descriptor as data.
var emptyJSON = []byte("{}")

// unknownPlatform keeps attestation manifests out of platform selection by
// clients that do not know the annotations.
var unknownPlatform = ocispec.Platform{OS: "unknown", Architecture: "unknown"}

// Image is one platform image of an index with the statements to attach.
type Image struct {
	Descriptor ocispec.Descriptor // the image manifest's entry in the index
	Statements []Statement
}

// Manifest is an attestation manifest ready to be written: Descriptor goes
// into the index after the images, Raw is the manifest, Blobs are its
// config and layers by digest.
type Manifest struct {
	Descriptor ocispec.Descriptor
	Raw        []byte
	Blobs      map[digest.Digest][]byte
}

// IndexAdditions returns one attestation manifest per image that has
// statements, in the images' order, as BuildKit appends them to the index.
// Images without statements get none.
func IndexAdditions(images []Image) ([]Manifest, error) {
	var out []Manifest
	for _, img := range images {
		if len(img.Statements) == 0 {
			continue
		}
		m, err := attestationManifest(img)
		if err != nil {
			where := img.Descriptor.Digest.String()
			if img.Descriptor.Platform != nil {
				where = platform.Format(*img.Descriptor.Platform) + " image " + where
			}
			return nil, fmt.Errorf("attestation manifest for %s: %w", where, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func attestationManifest(img Image) (Manifest, error) {
	blobs := map[digest.Digest][]byte{}
	config := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeEmptyJSON,
		Digest:    digest.FromBytes(emptyJSON),
		Size:      int64(len(emptyJSON)),
		Data:      emptyJSON,
	}
	blobs[config.Digest] = emptyJSON
	var layers []ocispec.Descriptor
	for _, st := range img.Statements {
		raw, err := json.Marshal(st)
		if err != nil {
			return Manifest{}, fmt.Errorf("encoding %s statement: %w", st.PredicateType, err)
		}
		d := digest.FromBytes(raw)
		blobs[d] = raw
		layers = append(layers, ocispec.Descriptor{
			MediaType:   MediaTypeInToto,
			Digest:      d,
			Size:        int64(len(raw)),
			Annotations: map[string]string{AnnotationPredicateType: st.PredicateType},
		})
	}
	subject := img.Descriptor
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeAttestation,
		Config:       config,
		Layers:       layers,
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	m.SchemaVersion = 2
	// Indented as BuildKit writes manifests, so the digests agree.
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	p := unknownPlatform
	return Manifest{
		Descriptor: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.FromBytes(raw),
			Size:      int64(len(raw)),
			Annotations: map[string]string{
				AnnotationReferenceDigest: subject.Digest.String(),
				AnnotationReferenceType:   platform.AttestationReferenceType,
			},
			Platform: &p,
		},
		Raw:   raw,
		Blobs: blobs,
	}, nil
}

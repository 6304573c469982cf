package source

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Unpack writes layer blob desc, already in the content store, into the new
// snapshot id and commits it, checking that it decompresses to diffID.
func (p *Puller) Unpack(ctx context.Context, id string, desc ocispec.Descriptor, diffID digest.Digest) error {
	// Layers of a cache export list every directory they change, so
	// they imply none.
	_, err := p.unpack(ctx, id, desc, diffID)
	return err
}

// ChainIDs computes the OCI chain ID of every prefix of diffIDs.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest { return chainIDs(diffIDs) }

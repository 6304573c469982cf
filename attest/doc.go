// Package attest makes the attestations BuildKit attaches to images.
package attest

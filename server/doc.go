// Package server is `builder serve` and its client: an HTTP/JSON API (see
// server/api and docs/serve-api.md) over a UNIX socket or mutual-TLS TCP
// that syncs a build context by content, queues builds (--max-builds),
// streams progress back and returns client-side outputs. The build itself
// is the caller's BuildFunc: the server has no build logic of its own.
package server

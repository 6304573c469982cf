//go:build !linux

package localctx

import "time"

// rootSettle: without ctime (see fileKey) nothing tells a coarse file
// system apart, so every file gets the wide margin.
func rootSettle(string) time.Duration { return coarseSettle }

package build

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SourceDateEpochArg is the build arg (and environment variable) that makes
// a build reproducible.
const SourceDateEpochArg = "SOURCE_DATE_EPOCH"

// sourceDateEpoch reads SOURCE_DATE_EPOCH from the build args: nil when it
// is not set.
func sourceDateEpoch(args map[string]string) (*time.Time, error) {
	v := strings.TrimSpace(args[SourceDateEpochArg])
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("--build-arg %s=%s: want a number of seconds since 1970-01-01 UTC", SourceDateEpochArg, v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// buildTimes returns the SOURCE_DATE_EPOCH of a build (nil if unset) and
// the time to record as the image's and its new history entries' creation:
// the epoch if set, else zero, which lets the exporter take each entry's
// time from the record of the step that made its layer (so a cached
// rebuild gives the same image).
func buildTimes(opt Options) (*time.Time, time.Time, error) {
	epoch, err := sourceDateEpoch(opt.BuildArgs)
	if err != nil {
		return nil, time.Time{}, err
	}
	if epoch != nil {
		return epoch, *epoch, nil
	}
	return nil, time.Time{}, nil
}

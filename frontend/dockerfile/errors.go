package dockerfile

import (
	"errors"
	"fmt"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// SourceError is an error at a place in the Dockerfile.
type SourceError struct {
	Location llb.Location
	// Text is the instruction as written, when known.
	Text string
	Err  error
}

func (e *SourceError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("%s: %s: %v", e.Location, e.Text, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Location, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

func location(file string, ranges []parser.Range) llb.Location {
	if len(ranges) == 0 {
		return llb.Location{File: file}
	}
	loc := llb.Location{File: file, StartLine: ranges[0].Start.Line, EndLine: ranges[0].End.Line}
	for _, r := range ranges[1:] {
		loc.EndLine = max(loc.EndLine, r.End.Line)
	}
	return loc
}

// ParseError turns an error of BuildKit's parser (parser.Parse,
// instructions.Parse) into a *SourceError naming file,
// dropping BuildKit's stack wrapper.
func ParseError(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 {
		return &SourceError{Location: location(file, le.Locations[0]), Err: errors.New(le.Unwrap().Error())}
	}
	return fmt.Errorf("%s: %w", file, err)
}

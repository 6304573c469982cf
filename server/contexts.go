package server

import (
	"fmt"
	"path/filepath"

	"github.com/builder-dev/builder/server/api"
)

// namedContexts assembles the listings of the request's directory
// --build-contexts under dir and names them in req.Contexts (after
// Policy.Check, which refuses a server path sent as a value). It returns
// what their uploads cost.
func (s *Server) namedContexts(req *api.BuildRequest, dir string) (files int, bytes int64, err error) {
	n := 0
	for name, id := range req.LocalContexts {
		sc := s.context(id)
		if sc == nil {
			return 0, 0, fmt.Errorf("--build-context %s: no such context listing %q", name, id)
		}
		d := filepath.Join(dir, "named", fmt.Sprint(n))
		n++
		if err := s.blobs.Assemble(d, sc.files); err != nil {
			return 0, 0, fmt.Errorf("assembling --build-context %s: %w", name, err)
		}
		if req.Contexts == nil {
			req.Contexts = map[string]string{}
		}
		req.Contexts[name] = d
		s.mu.Lock()
		files, bytes = files+sc.uploadFiles, bytes+sc.uploadBytes
		delete(s.contexts, id)
		s.mu.Unlock()
	}
	return files, bytes, nil
}

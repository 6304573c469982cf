package server

import (
	"testing"

	"github.com/builder-dev/builder/server/api"
)

// TestPolicyRefusesServerPaths: a client cannot name a directory of the
// server as a build context (or cache), only send a listing.
func TestPolicyRefusesServerPaths(t *testing.T) {
	for _, req := range []api.BuildRequest{
		{Contexts: map[string]string{"x": "/etc"}},
		{Contexts: map[string]string{"x": "oci-layout:///var/lib/builder"}},
		{CacheFrom: []string{"type=local,src=/etc"}},
	} {
		if err := (Policy{}).Check(&req); err == nil {
			t.Errorf("Policy.Check(%+v) accepted a server path", req)
		}
	}
	ok := api.BuildRequest{Contexts: map[string]string{"x": "docker-image://busybox:1"}, LocalContexts: map[string]string{"y": "id"}}
	if err := (Policy{}).Check(&ok); err != nil {
		t.Errorf("Policy.Check refused an image context: %v", err)
	}
}

// Package share decides which builds of one solve (the targets of a bake)
// may share a step: a step that mounts secrets or SSH agents runs with one
// build's session, so builds share it only when their sessions give it the
// same ones.
package share

import (
	"bytes"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/opencontainers/go-digest"
)

// Uses are the secret and SSH agent ids v's process mounts.
func Uses(v *llb.Vertex) (secrets, ssh []string) {
	e, ok := v.Op().(llb.ExecOp)
	if !ok {
		return nil, nil
	}
	for _, m := range e.Mounts {
		switch m.Type {
		case llb.MountSecret:
			secrets = append(secrets, m.ID)
		case llb.MountSSH:
			ssh = append(ssh, m.ID)
		}
	}
	return secrets, ssh
}

// Groups splits builds 0..n-1, whose graphs roots gives, into groups that
// can be solved together: within a group, every step that several builds
// hold and that mounts secrets or SSH agents is one that agree says the
// two builds' sessions give alike. A build joins the first group it agrees
// with, so builds that all agree make one group, in order.
func Groups(n int, roots func(i int) []*llb.Vertex, agree func(i, j int, v *llb.Vertex) bool) [][]int {
	// needy holds, per build, its steps that mount secrets or SSH agents.
	needy := make([]map[digest.Digest]*llb.Vertex, n)
	for i := range n {
		needy[i] = map[digest.Digest]*llb.Vertex{}
		llb.Walk(roots(i), func(v *llb.Vertex) error {
			if s, h := Uses(v); len(s)+len(h) > 0 {
				needy[i][v.Digest()] = v
			}
			return nil
		})
	}
	var groups [][]int
next:
	for i := range n {
		for g, members := range groups {
			if fits(i, members, needy, agree) {
				groups[g] = append(groups[g], i)
				continue next
			}
		}
		groups = append(groups, []int{i})
	}
	return groups
}

// fits says whether build i agrees with every member on the steps they
// share.
func fits(i int, members []int, needy []map[digest.Digest]*llb.Vertex, agree func(i, j int, v *llb.Vertex) bool) bool {
	for _, j := range members {
		for d, v := range needy[i] {
			if _, shared := needy[j][d]; shared && !agree(i, j, v) {
				return false
			}
		}
	}
	return true
}

// SameSession says whether sessions a and b give v's process the same
// secrets and SSH agents. Sessions that fetch them on demand (a `builder
// serve` client's) agree only with themselves.
func SameSession(a, b *ops.Session, v *llb.Vertex) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.FetchSecret != nil || b.FetchSecret != nil || a.DialSSH != nil || b.DialSSH != nil {
		return false
	}
	secrets, ssh := Uses(v)
	for _, id := range secrets {
		x, okx := a.Secrets[id]
		y, oky := b.Secrets[id]
		if okx != oky || !bytes.Equal(x, y) {
			return false
		}
	}
	for _, id := range ssh {
		x, okx := a.SSH[id]
		y, oky := b.SSH[id]
		if okx != oky || x != y {
			return false
		}
	}
	return true
}

// Renumber gives the export step of a build in a solve of several the
// number To, not From: the steps' numbers go on over all the builds'
// graphs, and the export's follows its own graph's.
type Renumber struct {
	Next     solver.Progress
	From, To int
}

func (r Renumber) Event(e solver.Event) {
	if e.Index == r.From && e.Name == "exporting" {
		e.Index = r.To
	}
	if r.Next != nil {
		r.Next.Event(e)
	}
}

// CountVertices counts the distinct vertices of roots (every platform's
// graph), which number the steps before a build's export step.
func CountVertices(roots []*llb.Vertex) int {
	n := 0
	llb.Walk(roots, func(*llb.Vertex) error { n++; return nil })
	return n
}

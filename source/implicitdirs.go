package source

import (
	"github.com/builder-dev/builder/snapshot"
)

// inheritImplicitDirs gives the directories that the layers ids (bottom
// first, on top of the snapshot parent) implied without listing them the
// metadata of the same directories below, once every layer is unpacked:
// layers are unpacked in parallel, each into its own directory, where
// Apply cannot see an existing /tmp (1777) that "tmp/x" without "tmp/"
// must leave alone.
func (p *Puller) inheritImplicitDirs(parent string, ids []string, implicit [][]string) error {
	var base []string // the parent's chain, top-most first
	if parent != "" {
		chain, err := p.DB.Chain(parent)
		if err != nil {
			return err
		}
		for _, s := range chain {
			base = append(base, p.Snapshots.FS(s.ID))
		}
	}
	for i, dirs := range implicit {
		if len(dirs) == 0 {
			continue
		}
		var lowers []string
		for j := i - 1; j >= 0; j-- {
			lowers = append(lowers, p.Snapshots.FS(ids[j]))
		}
		if err := snapshot.InheritDirs(p.Snapshots.FS(ids[i]), dirs, append(lowers, base...)); err != nil {
			return err
		}
	}
	return nil
}

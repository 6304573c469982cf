package dockerfile

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/platform"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// from sets a stage's starting point: a named build context, an earlier
// stage, scratch, or an image.
func (c *converter) from(st *stageState, idx int, base string, loc []parser.Range) error {
	if v, img, ok, err := c.namedContext(st, base, loc, false); ok || err != nil {
		if err != nil {
			return err
		}
		st.vertex, st.image = v, img
		return nil
	}
	if from, isStage := c.stageIndex(base, idx); isStage && strings.EqualFold(c.stages[from].Name, base) {
		parent, err := c.lowerStage(from)
		if err != nil {
			return err
		}
		st.vertex, st.image = parent.vertex, cloneImage(parent.image)
		if c.stages[idx].Platform == "" {
			st.platform = parent.platform // as BuildKit: the base stage's
		}
		// BuildKit: a stage keeps its base stage's ARGs and variables.
		st.args = parent.args.Clone()
		st.initVars(parent.vars)
		return nil
	}
	if later, ok := c.stageIndex(base, len(c.stages)); ok && later >= idx && strings.EqualFold(c.stages[later].Name, base) {
		return fmt.Errorf("FROM %s: that stage is defined later in the Dockerfile; a stage can only start from an earlier one", base)
	}
	if base == "scratch" {
		st.image = emptyImage(st.platform)
		st.image.Config.Env = []string{"PATH=" + DefaultPath}
		st.image.Config.WorkingDir = "/" // as BuildKit sets it
		return nil
	}
	v, img, err := c.image(base, st.platform, c.meta(st, "FROM "+base, loc))
	if err != nil {
		return err
	}
	st.vertex, st.image = v, img
	return nil
}

// namedContext resolves a --build-context name, for FROM or (forCopy)
// COPY --from, which reads a directory context in place.
func (c *converter) namedContext(st *stageState, name string, loc []parser.Range, forCopy bool) (*llb.Vertex, Image, bool, error) {
	value, ok := c.opt.Contexts[name]
	if !ok {
		return nil, Image{}, false, nil
	}
	switch {
	case strings.HasPrefix(value, "docker-image://"):
		v, img, err := c.image(strings.TrimPrefix(value, "docker-image://"), st.platform, c.meta(st, "FROM "+value, loc))
		return v, img, true, err
	case strings.Contains(value, "://"):
		return nil, Image{}, true, fmt.Errorf("build context %s=%s: only directories, docker-image:// and oci-layout:// are supported", name, value)
	}
	if !filepath.IsAbs(value) {
		return nil, Image{}, true, fmt.Errorf("build context %s=%s: the directory must be an absolute path", name, value)
	}
	local := llb.NewVertex(llb.LocalOp{Name: name, Dir: value}, nil, llb.Meta{Name: "[internal] load build context " + name})
	if forCopy {
		return local, Image{}, true, nil
	}
	// FROM a directory makes its files the stage's first layer.
	v := llb.NewVertex(llb.CopyOp{Sources: []string{"."}, Dest: "/"}, []*llb.Vertex{nil, local}, c.meta(st, "FROM "+name, loc))
	img := emptyImage(st.platform)
	img.Config.Env = []string{"PATH=" + DefaultPath}
	img.History = []ocispec.History{{Created: c.created(), CreatedBy: "FROM " + name + " (build context " + value + ")"}}
	return v, img, true, nil
}

// runOnbuild runs the ONBUILD triggers the stage's base image recorded, as
// if they followed FROM, and clears them from the new image.
func (c *converter) runOnbuild(st *stageState, loc []parser.Range) error {
	triggers := st.image.Config.OnBuild
	st.image.Config.OnBuild = nil
	for _, trigger := range triggers {
		res, err := parser.Parse(strings.NewReader(trigger))
		if err != nil || len(res.AST.Children) != 1 {
			return fmt.Errorf("ONBUILD trigger %q of the base image: %v", trigger, err)
		}
		node := res.AST.Children[0]
		switch strings.ToUpper(node.Value) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("ONBUILD trigger %q of the base image: %s is not allowed as a trigger", trigger, strings.ToUpper(node.Value))
		}
		cmd, err := instructions.ParseCommand(node)
		if err != nil {
			return fmt.Errorf("ONBUILD trigger %q of the base image: %w", trigger, err)
		}
		if err := c.dispatch(st, cmd); err != nil {
			return fmt.Errorf("ONBUILD trigger %q of the base image: %w", trigger, err)
		}
	}
	return nil
}

// stagePlatform is the platform of a stage: FROM --platform=VALUE,
// expanded with the global args, else the target platform.
func (c *converter) stagePlatform(value string) (ocispec.Platform, error) {
	if value == "" {
		return c.opt.TargetPlatform, nil
	}
	v, err := c.expand(value, c.globals.Env())
	if err != nil {
		return ocispec.Platform{}, err
	}
	p, err := platform.Parse(v)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("--platform=%s: %w", value, err)
	}
	return p, nil
}

// cloneImage deep-copies what a stage may change in a config, so a stage
// built on another does not change the other's slices and maps.
func cloneImage(img Image) Image {
	c := &img.Config
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Shell = slices.Clone(c.Shell)
	c.OnBuild = slices.Clone(c.OnBuild)
	c.Labels = maps.Clone(c.Labels)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	img.History = slices.Clone(img.History)
	img.RootFS.DiffIDs = slices.Clone(img.RootFS.DiffIDs)
	return img
}

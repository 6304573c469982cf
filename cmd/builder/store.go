package main

import (
	"fmt"
	"io"
	"os"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/source"
	"github.com/spf13/cobra"
)

// newStoreCommands are the commands over the local image store besides
// images and run: tag, push, save, load, rmi.
func newStoreCommands(g *globalOptions) []*cobra.Command {
	tag := &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image of the local store another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, g, func(st *build.State) error { return st.Images.Tag(args[0], args[1]) })
		},
	}
	push := &cobra.Command{
		Use:   "push NAME",
		Short: "Push an image of the local store to the registry its name says",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, g, func(st *build.State) error { return st.Images.Push(cmd.Context(), args[0], source.Keychain) })
		},
	}
	save, load := newSaveCommand(g), newLoadCommand(g)
	rmi := &cobra.Command{
		Use:   "rmi NAME...",
		Short: "Remove names from the local store (the next prune frees what only they used)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, g, func(st *build.State) error {
				err := st.Images.Remove(args...)
				for _, n := range args {
					if _, gone := st.Images.Image(n); gone != nil {
						fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", n)
					}
				}
				return err
			})
		},
	}
	return []*cobra.Command{tag, push, save, load, rmi}
}

// newSaveCommand is `builder save`: images as a docker or OCI tar.
func newSaveCommand(g *globalOptions) *cobra.Command {
	var saveFile, saveFormat string
	cmd := &cobra.Command{
		Use:   "save [-o FILE] [--format docker|oci] NAME...",
		Short: "Write images of the local store as a tar (docker save format or OCI layout)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if saveFormat != "docker" && saveFormat != "oci" {
				return fmt.Errorf("--format %s: want docker or oci", saveFormat)
			}
			st, err := openState(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			if saveFile == "" || saveFile == "-" {
				return st.Images.Save(cmd.OutOrStdout(), saveFormat, args...)
			}
			return st.Images.SaveFile(saveFile, saveFormat, args...)
		},
	}
	cmd.Flags().StringVarP(&saveFile, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().StringVar(&saveFormat, "format", "docker", "archive format: docker (what docker/podman load read) or oci (OCI image layout)")
	return cmd
}

// newLoadCommand is `builder load`: a docker or OCI tar into the store.
func newLoadCommand(g *globalOptions) *cobra.Command {
	var loadFile string
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from a docker save tar or an OCI layout tar into the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in io.Reader = cmd.InOrStdin()
			if loadFile != "" && loadFile != "-" {
				f, err := os.Open(loadFile)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			return withState(cmd, g, func(st *build.State) error {
				imgs, err := st.Images.Load(cmd.Context(), in)
				for _, img := range imgs {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s (%s)\n", img.Name, img.Manifest.Digest)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&loadFile, "input", "i", "", "read from FILE instead of stdin")
	return cmd
}

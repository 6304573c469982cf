// Package dockerfile lowers a Dockerfile to an llb graph and the image
// config. Syntax comes from BuildKit's parser and instructions packages; the
// semantics (ARG and ENV scoping, stage resolution, what each instruction
// does to the config and the file tree) are ours. It never touches the disk
// or runs anything: base images are resolved through an ImageResolver.
package dockerfile

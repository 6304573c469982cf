// Package seccompprog is the seccomp program the sandbox init installs:
// Docker's default profile for Docker's default capabilities, compiled
// once per process by the parent (the init then needs no compiler), with
// the sync calls run or elided. Linux only.
package seccompprog

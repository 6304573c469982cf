// Package archtest pins the module's architecture: its test reads the
// import graph with `go list` and fails when a package imports across the
// layers that DESIGN.md draws (dependencies point down only). It has no
// code of its own; the layers and their reasons are in arch_test.go.
package archtest

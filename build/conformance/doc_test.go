// Package conformance_test builds every case of testdata/conformance with
// the build package's exported API and compares the images with the
// expectations BuildKit made (oracle_test.go makes them again with a real
// BuildKit). Its own package, so that it can use nothing but that API.
package conformance_test

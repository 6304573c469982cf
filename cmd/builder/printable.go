package main

import "github.com/builder-dev/builder/progress"

// printable escapes what a terminal would act on (see progress.Printable).
func printable(s string) string { return progress.Printable(s) }

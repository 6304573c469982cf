// Command app is the Go case of bench/peers: a small program whose
// dependencies come from the Go module proxy, built with Debian's Go.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

const touched = "0"

func main() {
	cmd := &cobra.Command{
		Use: "app",
		Run: func(*cobra.Command, []string) {
			logrus.Info(cases.Title(language.English).String("hello from the peers benchmark " + touched))
		},
	}
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

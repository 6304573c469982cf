// Command setx sets extended attributes, which busybox cannot: setx PATH
// NAME HEX [NAME HEX]... sets each NAME of PATH to the bytes HEX, and on
// the first refusal writes the error to PATH.err and stops (exit 0, so
// the image shows what the sandbox refused). setx -g PATH NAME... prints
// "NAME=HEX" for each NAME of PATH, or "NAME: error".
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) >= 4 && os.Args[1] == "-g" {
		get(os.Args[2], os.Args[3:])
		return
	}
	if len(os.Args) < 4 || len(os.Args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: setx PATH NAME HEX [NAME HEX]... | setx -g PATH NAME...")
		os.Exit(2)
	}
	p := os.Args[1]
	for i := 2; i < len(os.Args); i += 2 {
		v, err := hex.DecodeString(os.Args[i+1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := syscall.Setxattr(p, os.Args[i], v, 0); err != nil {
			msg := fmt.Sprintf("%s: %v\n", os.Args[i], err)
			if werr := os.WriteFile(p+".err", []byte(msg), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, werr)
				os.Exit(1)
			}
			return
		}
	}
}

func get(p string, names []string) {
	buf := make([]byte, 64<<10)
	for _, n := range names {
		sz, err := syscall.Getxattr(p, n, buf)
		if err != nil {
			fmt.Printf("%s: %v\n", n, err)
			continue
		}
		fmt.Printf("%s=%s\n", n, hex.EncodeToString(buf[:sz]))
	}
}

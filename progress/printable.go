package progress

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable returns s with what a terminal would act on written as Go
// escapes: C0 controls but tab and newline, DEL, C1 controls and bytes
// that are not UTF-8. Step names and errors quote Dockerfiles, URLs and
// servers' answers; escaped, they cannot move the cursor, retitle the
// window or hide lines of a CI log. A step's own output is left as it is,
// as BuildKit leaves it (colours are welcome there).
func Printable(s string) string {
	if !strings.ContainsFunc(s, NeedsEscape) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case NeedsEscape(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case NeedsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// NeedsEscape reports whether a terminal would act on r: C0 controls but
// tab and newline, DEL and C1 controls.
func NeedsEscape(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || (r >= 0x7f && r <= 0x9f)
}

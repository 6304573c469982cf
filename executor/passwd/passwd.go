package passwd

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// User is the identity a process runs as.
type User struct {
	UID, GID int
	// Groups are the supplementary groups, the primary group first.
	Groups []int
	// Home is the user's home directory from /etc/passwd, else "/".
	Home string
}

// passwdEntry and groupEntry hold the fields of /etc/passwd and /etc/group
// lines that the sandbox needs.
type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// ResolveUser resolves a Dockerfile USER value ("", "name", "uid",
// "name:group", "uid:gid", ...) against the image's passwd and group files.
// Either reader may be nil when the file does not exist.
//
// A name must exist; a numeric uid or gid need not (uid alone then gets gid
// 0). A user found in passwd gets the groups that list it as a member as
// supplementary groups, after its primary group.
func ResolveUser(spec string, passwd, group io.Reader) (User, error) {
	userPart, groupPart, _ := strings.Cut(spec, ":")
	if userPart == "" {
		if groupPart != "" {
			return User{}, fmt.Errorf("user %q: missing user before ':'", spec)
		}
		userPart = "0"
	}
	users, err := parsePasswd(passwd)
	if err != nil {
		return User{}, err
	}
	var groups []groupEntry
	if group != nil {
		if groups, err = parseGroup(group); err != nil {
			return User{}, err
		}
	}

	u := User{Home: "/"}
	var name string // the passwd name, when the user is found there
	if id, ok := parseID(userPart); ok {
		u.UID = id
		for _, e := range users {
			if e.uid == id {
				name, u.GID, u.Home = e.name, e.gid, cmp.Or(e.home, "/")
				break
			}
		}
	} else {
		i := slices.IndexFunc(users, func(e passwdEntry) bool { return e.name == userPart })
		if i < 0 {
			return User{}, fmt.Errorf("user %q not found in /etc/passwd", userPart)
		}
		name, u.UID, u.GID, u.Home = users[i].name, users[i].uid, users[i].gid, cmp.Or(users[i].home, "/")
	}

	if groupPart != "" {
		if id, ok := parseID(groupPart); ok {
			u.GID = id
		} else {
			i := slices.IndexFunc(groups, func(g groupEntry) bool { return g.name == groupPart })
			if i < 0 {
				return User{}, fmt.Errorf("group %q not found in /etc/group", groupPart)
			}
			u.GID = groups[i].gid
		}
	}

	u.Groups = []int{u.GID}
	if name != "" {
		for _, g := range groups {
			if slices.Contains(g.members, name) && !slices.Contains(u.Groups, g.gid) {
				u.Groups = append(u.Groups, g.gid)
			}
		}
	}
	return u, nil
}

// parseID parses a uid or gid: a decimal number in [0, 2^31).
func parseID(s string) (int, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// scanFields calls fn with the colon-separated fields of each line of r
// that is not empty, a comment, or an NIS (+/-) entry. Malformed lines are
// skipped, as libc does, rather than failing every build on that image.
func scanFields(r io.Reader, file string, fn func(fields []string)) error {
	if r == nil {
		return nil
	}
	s := bufio.NewScanner(r)
	for s.Scan() {
		text := strings.TrimSpace(s.Text())
		if text == "" || text[0] == '#' || text[0] == '+' || text[0] == '-' {
			continue
		}
		fn(strings.Split(text, ":"))
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	return nil
}

func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanFields(r, "/etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if ok1 && ok2 {
			e := passwdEntry{name: f[0], uid: uid, gid: gid}
			if len(f) > 5 {
				e.home = f[5]
			}
			out = append(out, e)
		}
	})
	return out, err
}

func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := scanFields(r, "/etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, ok := parseID(f[2])
		if !ok {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		out = append(out, g)
	})
	return out, err
}

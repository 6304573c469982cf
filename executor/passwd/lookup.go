package passwd

import (
	"io"
	"os"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// LookupUser resolves a USER value ("name", "uid:gid", "name:group", ...)
// as a RUN step would run with it, against /etc/passwd and /etc/group of the
// file tree at root, following symlinks only inside root.
func LookupUser(root, spec string) (uid, gid int, err error) {
	err = withUserFiles(root, func(passwd, group io.Reader) error {
		u, err := ResolveUser(spec, passwd, group)
		uid, gid = u.UID, u.GID
		return err
	})
	return uid, gid, err
}

// LookupOwner resolves a COPY --chown or WORKDIR owner the way BuildKit's
// file operations do, which differs from a RUN user: a bare uid is also the
// gid (--chown=1234 is 1234:1234), a name takes its passwd uid and primary
// gid, and a group, by name or id, replaces the gid. As in BuildKit, a
// name that passwd (or group) lacks is not an error: an unknown user is
// 0:0, an unknown group leaves the gid alone, and ":group" is user 0.
func LookupOwner(root, spec string) (uid, gid int, err error) {
	err = withUserFiles(root, func(passwd, group io.Reader) error {
		userPart, groupPart, _ := strings.Cut(spec, ":")
		if id, ok := parseID(userPart); ok {
			uid, gid = id, id
		} else if userPart != "" {
			users, err := parsePasswd(passwd)
			if err != nil {
				return err
			}
			if i := slices.IndexFunc(users, func(e passwdEntry) bool { return e.name == userPart }); i >= 0 {
				uid, gid = users[i].uid, users[i].gid
			}
		}
		if groupPart == "" {
			return nil
		}
		if id, ok := parseID(groupPart); ok {
			gid = id
			return nil
		}
		groups, err := parseGroup(group)
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(groups, func(g groupEntry) bool { return g.name == groupPart }); i >= 0 {
			gid = groups[i].gid
		}
		return nil
	})
	return uid, gid, err
}

// withUserFiles calls fn with root's /etc/passwd and /etc/group, either
// nil when missing.
func withUserFiles(root string, fn func(passwd, group io.Reader) error) error {
	open := func(name string) (io.Reader, func(), error) {
		p, err := securejoin.SecureJoin(root, name)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			return nil, func() {}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	passwd, closePasswd, err := open("/etc/passwd")
	if err != nil {
		return err
	}
	defer closePasswd()
	group, closeGroup, err := open("/etc/group")
	if err != nil {
		return err
	}
	defer closeGroup()
	return fn(passwd, group)
}

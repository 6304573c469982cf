package executor

import (
	"os"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// LookupUser resolves a USER or --chown value ("name", "uid:gid",
// "name:group", ...) against /etc/passwd and /etc/group of the file tree at
// root, following symlinks only inside root.
func LookupUser(root, spec string) (uid, gid int, err error) {
	open := func(name string) (*os.File, error) {
		p, err := securejoin.SecureJoin(root, name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			return nil, nil
		}
		return f, err
	}
	passwd, err := open("/etc/passwd")
	if err != nil {
		return 0, 0, err
	}
	if passwd != nil {
		defer passwd.Close()
	}
	group, err := open("/etc/group")
	if err != nil {
		return 0, 0, err
	}
	if group != nil {
		defer group.Close()
	}
	// A nil *os.File must reach resolveUser as a nil io.Reader.
	u, err := resolveUser(spec, readerOrNil(passwd), readerOrNil(group))
	return u.UID, u.GID, err
}

func readerOrNil(f *os.File) interface{ Read([]byte) (int, error) } {
	if f == nil {
		return nil
	}
	return f
}

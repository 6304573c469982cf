package sandboxinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
	"github.com/builder-dev/builder/snapshot/mount"
)

// The Config and the Reports travel as frames: a 4-byte little-endian
// length, then the fields in a fixed order, each string and slice
// length-prefixed (uvarint). Decoding JSON took a fifth of the init's own
// time and linked encoding/json into it; this takes a few microseconds and
// allocates only the strings. Both ends are the same build (EnvInit), so
// there is no versioning: a field added to Config is added to
// appendConfig and Config.decode, and TestConfigWire fails until it is.

// maxFrame bounds a frame: a config lists mounts and environment, never
// megabytes of them.
const maxFrame = 16 << 20

// appendFrame appends the frame of the encoded body that enc appends.
func appendFrame(b []byte, enc func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = enc(b)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// readFrame reads one frame's body from r; io.EOF when r ends before it.
func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint32(n[:])
	if size > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes: more than %d", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("short frame: %w", noEOF(err))
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// MarshalConfig is the frame of c, without its seccomp program and
// secrets' data, which follow it raw (see readPayload).
func MarshalConfig(c *Config) []byte {
	return appendFrame(nil, func(b []byte) []byte { return appendConfig(b, c) })
}

// ReadConfig reads a frame written by MarshalConfig.
func ReadConfig(r io.Reader, c *Config) error {
	b, err := readFrame(r)
	if err != nil {
		return noEOF(err)
	}
	d := decoder{b: b}
	c.decode(&d)
	return d.finish()
}

// MarshalReport is the frame of rep.
func MarshalReport(rep *Report) []byte {
	return appendFrame(nil, func(b []byte) []byte {
		b = appendStrings(b, rep.Stubs)
		b = appendString(b, rep.Error)
		return binary.AppendVarint(b, int64(rep.Errno))
	})
}

// ReadReport reads a frame written by MarshalReport; io.EOF when r ended
// cleanly before it.
func ReadReport(r io.Reader, rep *Report) error {
	b, err := readFrame(r)
	if err != nil {
		return err
	}
	d := decoder{b: b}
	rep.Stubs = d.strings()
	rep.Error = d.string()
	rep.Errno = int(d.varint())
	return d.finish()
}

func appendConfig(b []byte, c *Config) []byte {
	b = appendLayers(b, c.Rootfs)
	b = appendStrings(b, c.Args)
	b = appendStrings(b, c.Env)
	for _, s := range []string{c.Cwd, c.User, c.Hostname, c.StateDir} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Mounts)))
	for _, m := range c.Mounts {
		b = appendString(b, m.Source)
		b = appendString(b, m.Target)
		b = appendBool(b, m.Readonly)
	}
	b = binary.AppendUvarint(b, uint64(len(c.RunMounts)))
	for _, m := range c.RunMounts {
		b = appendString(b, m.Type)
		b = appendString(b, m.Target)
		b = appendString(b, m.Source)
		b = appendLayers(b, m.Layers)
		b = binary.AppendVarint(b, m.Size)
		b = appendBool(b, m.Readonly)
		b = binary.AppendVarint(b, int64(m.UID))
		b = binary.AppendVarint(b, int64(m.GID))
		b = binary.AppendUvarint(b, uint64(m.Mode))
	}
	b = appendBool(b, c.Insecure)
	b = binary.AppendVarint(b, int64(c.SeccompSize))
	for _, f := range []bool{c.Net.Private, c.Net.Wait, c.Net.Shared, c.Net.DropNetRaw} {
		b = appendBool(b, f)
	}
	b = binary.AppendVarint(b, c.ShmSize)
	b = binary.AppendUvarint(b, uint64(len(c.Ulimits)))
	for _, u := range c.Ulimits {
		b = appendString(b, u.Name)
		b = binary.AppendVarint(b, u.Soft)
		b = binary.AppendVarint(b, u.Hard)
	}
	return b
}

func (c *Config) decode(d *decoder) {
	c.Rootfs = d.layers()
	c.Args = d.strings()
	c.Env = d.strings()
	for _, s := range []*string{&c.Cwd, &c.User, &c.Hostname, &c.StateDir} {
		*s = d.string()
	}
	if n := d.count(); n > 0 {
		c.Mounts = make([]rootfs.BindMount, n)
		for i := range c.Mounts {
			m := &c.Mounts[i]
			m.Source, m.Target, m.Readonly = d.string(), d.string(), d.bool()
		}
	}
	if n := d.count(); n > 0 {
		c.RunMounts = make([]rootfs.Mount, n)
		for i := range c.RunMounts {
			m := &c.RunMounts[i]
			m.Type, m.Target, m.Source = d.string(), d.string(), d.string()
			m.Layers = d.layers()
			m.Size, m.Readonly = d.varint(), d.bool()
			m.UID, m.GID = int(d.varint()), int(d.varint())
			m.Mode = uint32(d.uvarint())
		}
	}
	c.Insecure = d.bool()
	c.SeccompSize = int(d.varint())
	for _, f := range []*bool{&c.Net.Private, &c.Net.Wait, &c.Net.Shared, &c.Net.DropNetRaw} {
		*f = d.bool()
	}
	c.ShmSize = d.varint()
	if n := d.count(); n > 0 {
		c.Ulimits = make([]Ulimit, n)
		for i := range c.Ulimits {
			u := &c.Ulimits[i]
			u.Name, u.Soft, u.Hard = d.string(), d.varint(), d.varint()
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendLayers(b []byte, ms []mount.Mount) []byte {
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = appendString(b, m.Type)
		b = appendString(b, m.Source)
		b = appendStrings(b, m.Options)
	}
	return b
}

// decoder reads fields in order; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

var errMalformed = errors.New("malformed frame")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a slice length, which cannot exceed the bytes left (each
// element takes at least one).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		if d.err == nil {
			d.err = errMalformed
		}
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.err = errMalformed
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) layers() []mount.Mount {
	n := d.count()
	if n == 0 {
		return nil
	}
	ms := make([]mount.Mount, n)
	for i := range ms {
		ms[i].Type, ms[i].Source, ms[i].Options = d.string(), d.string(), d.strings()
	}
	return ms
}

// finish is the decoding's error: a short frame, or bytes left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes left over", errMalformed, len(d.b))
	}
	return d.err
}

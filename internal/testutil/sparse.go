package testutil

import (
	"bytes"
	"fmt"
	"strings"
)

// Fragment is a run of data in a sparse file; the rest is holes.
type Fragment struct {
	Offset int64
	Data   []byte
}

// SparseTar returns an uncompressed tar holding one regular file name of
// apparent size realSize, written as a PAX 1.0 sparse entry (the format
// of GNU tar --sparse --posix): only frags are stored, after the sparse
// map. archive/tar reads such entries but cannot write them, so the
// blocks are made here by hand. It ends with the end-of-archive blocks.
func SparseTar(name string, realSize int64, frags []Fragment) []byte {
	var out bytes.Buffer
	var pax strings.Builder
	for _, kv := range [][2]string{
		{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", name}, {"GNU.sparse.realsize", fmt.Sprint(realSize)},
	} {
		pax.WriteString(paxRecord(kv[0], kv[1]))
	}
	writeBlocks(&out, tarHeader("PaxHeaders.0/"+name, 'x', int64(pax.Len())), []byte(pax.String()))

	// The data: the map (count, then offset and length of each fragment,
	// one number a line, padded to a block), then the fragments.
	var data bytes.Buffer
	fmt.Fprintf(&data, "%d\n", len(frags))
	for _, f := range frags {
		fmt.Fprintf(&data, "%d\n%d\n", f.Offset, len(f.Data))
	}
	pad(&data)
	for _, f := range frags {
		data.Write(f.Data)
	}
	writeBlocks(&out, tarHeader("GNUSparseFile.0/"+name, '0', int64(data.Len())), data.Bytes())
	out.Write(make([]byte, 1024))
	return out.Bytes()
}

// paxRecord formats "LEN key=value\n", where LEN counts the whole record.
func paxRecord(k, v string) string {
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for len(fmt.Sprint(n))+len(rest) != n {
		n++
	}
	return fmt.Sprint(n) + rest
}

// tarHeader is a ustar header block, mode 0644, owned by 0:0, mtime 0.
func tarHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func writeBlocks(out *bytes.Buffer, hdr, data []byte) {
	out.Write(hdr)
	out.Write(data)
	pad(out)
}

func pad(b *bytes.Buffer) {
	if r := b.Len() % 512; r != 0 {
		b.Write(make([]byte, 512-r))
	}
}

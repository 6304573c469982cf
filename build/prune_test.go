package build_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/cache/usage"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/run"
	"github.com/opencontainers/go-digest"
)

// Two images share a base image, a "common" stage they build on and an
// intermediate "compile" stage they copy from (which is cache only).
const (
	pruneCommon = `FROM {{BASE}} AS common
RUN echo common > /common.txt
FROM common AS compile
RUN echo compiled > /out.txt
`
	pruneA = pruneCommon + `FROM common
COPY --from=compile /out.txt /a.txt
RUN cat /common.txt /a.txt > /result.txt
CMD ["cat", "/result.txt"]
`
	pruneB = pruneCommon + `FROM common
COPY --from=compile /out.txt /b.txt
RUN echo b >> /b.txt && cat /common.txt /b.txt > /result.txt
CMD ["cat", "/result.txt"]
`
	// pruneC uses the compile stage again, in an image of its own.
	pruneC = pruneCommon + `FROM {{BASE}}
COPY --from=compile /out.txt /c.txt
`
)

var noGC = &gc.Policy{}

type pruneEnv struct {
	t    *testing.T
	st   *build.State
	root string
	base string
	ctx  string
	args map[string]string
}

func newPruneEnv(t *testing.T) *pruneEnv {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	root := t.TempDir()
	return &pruneEnv{t: t, st: openState(t, root), root: root, base: base, ctx: writeContext(t, map[string]string{"x": "x"})}
}

// build builds a Dockerfile and returns the steps that ran.
func (e *pruneEnv) build(df string, tag string, gc *gc.Policy) (*build.Result, []string) {
	e.t.Helper()
	ev := newEvents()
	opts := build.Options{ContextDir: e.ctx, Dockerfile: []byte(strings.ReplaceAll(df, "{{BASE}}", e.base)), Progress: ev, GC: gc, BuildArgs: e.args}
	if tag != "" {
		opts.Tags = []string{tag}
	}
	res, err := e.st.Build(e.t.Context(), opts)
	if err != nil {
		e.t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res, ev.ran()
}

func (e *pruneEnv) run(image, want string) {
	e.t.Helper()
	var out bytes.Buffer
	if err := run.Image(e.t.Context(), e.st, run.Options{Image: image, Stdout: &out, Stderr: &out}); err != nil {
		e.t.Fatalf("run %s: %v: %s", image, err, out.String())
	}
	if out.String() != want {
		e.t.Errorf("run %s printed %q, want %q", image, out.String(), want)
	}
	// Run releases the state directory while the command runs.
	e.st = openState(e.t, e.root)
}

// onDisk walks the state directory: bytes of every layer directory (as
// du counts them: allocated blocks, hard links once) and of every blob.
func (e *pruneEnv) onDisk() (total int64, snaps map[string]bool, blobs map[digest.Digest]bool) {
	e.t.Helper()
	snaps, blobs = map[string]bool{}, map[digest.Digest]bool{}
	dirs, err := os.ReadDir(filepath.Join(e.root, "snapshots"))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range dirs {
		if d.Name() == "empty" || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		snaps[d.Name()] = true
		seen := map[uint64]bool{}
		err := filepath.WalkDir(filepath.Join(e.root, "snapshots", d.Name(), "fs"), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := de.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Nlink > 1 && !fi.IsDir() {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			total += st.Blocks * 512
			return nil
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	blobDir := filepath.Join(e.root, "content", "blobs", "sha256")
	files, err := os.ReadDir(blobDir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			e.t.Fatal(err)
		}
		blobs[digest.NewDigestFromEncoded(digest.SHA256, f.Name())] = true
		total += fi.Size()
	}
	return total, snaps, blobs
}

// checkDU compares du with the files on disk and returns it.
func (e *pruneEnv) checkDU(when string) *gcplan.DiskUsage {
	e.t.Helper()
	du, err := e.st.DiskUsage(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	total, snaps, blobs := e.onDisk()
	if du.Total != total {
		e.t.Errorf("%s: du total = %d, the files on disk take %d", when, du.Total, total)
	}
	if du.InUse+du.Reclaimable != du.Total {
		e.t.Errorf("%s: du in use %d + reclaimable %d != total %d", when, du.InUse, du.Reclaimable, du.Total)
	}
	var sum int64
	nsnap := 0
	for _, r := range du.Records {
		sum += r.Size
		if !r.Blob {
			nsnap++
			if !snaps[r.ID] {
				e.t.Errorf("%s: du lists snapshot %s, which has no directory", when, r.ID)
			}
		} else if !blobs[digest.Digest(r.ID)] {
			e.t.Errorf("%s: du lists blob %s, which is not on disk", when, r.ID)
		}
	}
	if sum != du.Total || nsnap != len(snaps) {
		e.t.Errorf("%s: du records sum to %d (total %d) and list %d snapshots; %d on disk", when, sum, du.Total, nsnap, len(snaps))
	}
	return du
}

func (e *pruneEnv) prune(opt gc.PruneOptions) *gc.PruneReport {
	e.t.Helper()
	before, _, _ := e.onDisk()
	rep, err := e.st.Prune(e.t.Context(), opt)
	if err != nil {
		e.t.Fatalf("prune %+v: %v", opt, err)
	}
	after, _, _ := e.onDisk()
	if rep.Freed != before-after || rep.Before != before || rep.After != after {
		e.t.Errorf("prune %+v reports freed %d (%d -> %d); on disk %d -> %d", opt, rep.Freed, rep.Before, rep.After, before, after)
	}
	return rep
}

func ranStep(ran []string, substr string) bool {
	for _, r := range ran {
		if strings.Contains(r, substr) {
			return true
		}
	}
	return false
}

func TestPruneAndDiskUsage(t *testing.T) {
	e := newPruneEnv(t)
	e.build(pruneA, "a", noGC)
	e.build(pruneB, "b", noGC)
	du := e.checkDU("after two builds")
	shared, compile := 0, 0
	for _, r := range du.Records {
		if strings.Contains(r.Description, "echo common") && (!r.Shared || !r.InUse) {
			t.Errorf("du: the common stage's layer is not shared and in use: %+v", r)
		}
		if r.Shared {
			shared++
		}
		if strings.Contains(r.Description, "echo compiled") {
			compile++
			if r.InUse || r.Shared {
				t.Errorf("du: the compile stage's layer is in use or shared: %+v", r)
			}
		}
	}
	if shared < 2 || compile != 1 {
		t.Errorf("du: %d shared records (want the base's and the common stage's), %d compile layers (want 1)", shared, compile)
	}
	if du.Reclaimable == 0 {
		t.Error("du: nothing reclaimable, want the compile stage")
	}

	// Everything was just used: until=1h removes nothing.
	if rep := e.prune(gc.PruneOptions{Until: time.Hour}); rep.Snapshots+rep.Keys+rep.Blobs != 0 {
		t.Errorf("prune until=1h right after building removed %+v", rep)
	}

	// Two days pass; image a is rebuilt (a no-op, touching its chain).
	keys, err := e.st.DB.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var all []digest.Digest
	for k := range keys {
		all = append(all, k)
	}
	if err := usage.Touch(e.st.DB, usage.Use{Keys: all, Time: time.Now().Add(-48 * time.Hour)}, e.st.Snapshots.Usage); err != nil {
		t.Fatal(err)
	}
	if _, ran := e.build(pruneA, "a", noGC); len(ran) != 0 {
		t.Errorf("rebuild of a ran %v", ran)
	}
	rep := e.prune(gc.PruneOptions{Until: 24 * time.Hour})
	if rep.Snapshots != 1 || rep.Freed == 0 {
		t.Errorf("prune until=24h removed %+v, want the compile stage's layer", rep)
	}
	e.checkDU("after prune until=24h")
	// Images still build fully cached and run.
	for _, img := range []struct{ df, tag, out string }{{pruneA, "a", "common\ncompiled\n"}, {pruneB, "b", "common\ncompiled\nb\n"}} {
		if _, ran := e.build(img.df, img.tag, noGC); len(ran) != 0 {
			t.Errorf("after prune, build of %s ran %v", img.tag, ran)
		}
		e.run(img.tag, img.out)
	}
	// The pruned compile stage runs again for another image.
	if _, ran := e.build(pruneC, "c", noGC); !ranStep(ran, "echo compiled") {
		t.Errorf("after prune, build of c ran %v, want the compile stage's RUN again", ran)
	}

	// keep-storage: least recently used cache goes until the total fits.
	du = e.checkDU("before prune --keep-storage")
	if du.Reclaimable == 0 {
		t.Fatal("nothing reclaimable before the keep-storage prune")
	}
	keep := du.InUse + du.Reclaimable/2
	rep = e.prune(gc.PruneOptions{KeepStorage: keep})
	if rep.After > keep || rep.Freed == 0 {
		t.Errorf("prune --keep-storage %d: %+v", keep, rep)
	}

	// --all leaves exactly what images need.
	e.prune(gc.PruneOptions{All: true})
	du = e.checkDU("after prune --all")
	if du.Reclaimable != 0 || du.InUse != du.Total {
		t.Errorf("after prune --all: in use %d, reclaimable %d, total %d", du.InUse, du.Reclaimable, du.Total)
	}
	_, snaps, blobs := e.onDisk()
	need := map[string]bool{}
	needBlob := map[digest.Digest]bool{}
	imgs, _ := e.st.DB.Images()
	for _, img := range imgs {
		chain, err := e.st.DB.Chain(img.Snapshot)
		if err != nil {
			t.Fatalf("image %s: %v", img.Name, err)
		}
		for _, s := range chain {
			need[s.ID] = true
		}
		v1img, err := exporter.V1Image(e.st.Content, img.Manifest)
		if err != nil {
			t.Fatalf("image %s: %v", img.Name, err)
		}
		needBlob[img.Manifest.Digest] = true
		cfg, _ := v1img.ConfigName()
		needBlob[digest.Digest(cfg.String())] = true
		layers, _ := v1img.Layers()
		for _, l := range layers {
			d, _ := l.Digest()
			needBlob[digest.Digest(d.String())] = true
		}
	}
	if len(snaps) != len(need) || len(blobs) != len(needBlob) {
		t.Errorf("after prune --all: %d snapshots and %d blobs on disk, images need %d and %d", len(snaps), len(blobs), len(need), len(needBlob))
	}
	for id := range need {
		if !snaps[id] {
			t.Errorf("after prune --all: snapshot %s of an image is gone", id)
		}
	}
	for _, img := range []struct{ df, tag, out string }{{pruneA, "a", "common\ncompiled\n"}, {pruneB, "b", "common\ncompiled\nb\n"}} {
		if _, ran := e.build(img.df, img.tag, noGC); len(ran) != 0 {
			t.Errorf("after prune --all, build of %s ran %v", img.tag, ran)
		}
		e.run(img.tag, img.out)
	}
	e.checkDU("after rebuilding")
}

// TestAutoGCSparesTheBuild runs the automatic GC with a limit of one byte
// after an untagged build: what that build used and produced is its lease
// and stays; older cache goes.
func TestAutoGCSparesTheBuild(t *testing.T) {
	e := newPruneEnv(t)
	e.build(pruneA, "a", noGC)
	res, ran := e.build(pruneC+"RUN echo c > /c2.txt\n", "", &gc.Policy{KeepStorage: 1})
	if !ranStep(ran, "echo c >") {
		t.Fatalf("the second build ran %v", ran)
	}
	// The build's image is readable: manifest, config and layers kept.
	img, err := exporter.V1Image(e.st.Content, res.Manifest)
	if err != nil {
		t.Fatalf("the build's image after the automatic GC: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("a layer of the build's image after the automatic GC: %v", err)
		}
		rc.Close()
	}
	// And builds again fully cached; image a too.
	if _, ran := e.build(pruneC+"RUN echo c > /c2.txt\n", "", noGC); len(ran) != 0 {
		t.Errorf("rebuild after the automatic GC ran %v", ran)
	}
	if _, ran := e.build(pruneA, "a", noGC); len(ran) != 0 {
		t.Errorf("rebuild of a after the automatic GC ran %v", ran)
	}
	e.run("a", "common\ncompiled\n")
	// The GC did run: a's cache-only layers it did not use are gone...
	// a's compile stage was used by the second build (COPY --from), so it
	// stays; nothing else is cache only. Run it again with image a's
	// stage-only cache: an untagged build on the common stage.
	e.build(pruneCommon+"FROM common\nRUN echo other > /other.txt\n", "", noGC)
	before := e.checkDU("before the third build")
	res3, _ := e.build(pruneCommon+"FROM {{BASE}}\nRUN echo third > /t.txt\n", "", &gc.Policy{KeepStorage: 1})
	after := e.checkDU("after the third build")
	if after.Total >= before.Total {
		t.Errorf("the automatic GC freed nothing: %d -> %d", before.Total, after.Total)
	}
	if _, err := exporter.V1Image(e.st.Content, res3.Manifest); err != nil {
		t.Errorf("the third build's image after its GC: %v", err)
	}
	for _, r := range after.Records {
		if strings.Contains(r.Description, "echo other") {
			t.Errorf("the automatic GC kept %+v, which nothing needs", r)
		}
	}
	if _, ran := e.build(pruneCommon+"FROM {{BASE}}\nRUN echo third > /t.txt\n", "", noGC); len(ran) != 0 {
		t.Errorf("rebuild of the third build ran %v", ran)
	}
	e.run("a", "common\ncompiled\n")
}

// TestAutoGCCheapWhenUnderLimit checks that a no-op rebuild under the
// limit leaves the cache alone.
func TestAutoGCUnderLimit(t *testing.T) {
	e := newPruneEnv(t)
	// A fixed creation time, so that a rebuild in another second does not
	// write a new config and manifest.
	e.args = map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	e.build(pruneA, "a", noGC)
	e.build(pruneC, "", noGC)
	before := e.checkDU("before")
	e.build(pruneA, "a", &gc.Policy{KeepStorage: before.Total * 2})
	if after := e.checkDU("after"); after.Total != before.Total {
		t.Errorf("a build under the GC limit changed the total: %d -> %d", before.Total, after.Total)
	}
	total, err := usage.Total(e.st.DB)
	if err != nil {
		t.Fatal(err)
	}
	// The running total counts layer directories and their blobs, not
	// manifests and configs: it is at most du's total, and close to it.
	if total > before.Total || total < before.Total*9/10 {
		t.Errorf("running total %d, du total %d", total, before.Total)
	}
}

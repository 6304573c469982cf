#!/usr/bin/env bash
# A build context of 20,000 files / 150 MB through `builder serve` on a
# UNIX socket (issue 14 target: a rebuild after touching one file syncs
# under 1 MB), and the rebuild's time against the same rebuild done
# locally. The context, both state dirs and the client's digest cache live
# on tmpfs (/dev/shm): the root filesystem here is journal-less ext4, slow
# with many files. Needs root and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
base=${BENCH_DIR:-/dev/shm/builder-bench-serve}
ctx=$base/ctx
rm -rf "$base/server" "$base/local" "$base/cache"
mkdir -p "$base/server" "$base/local" "$base/cache"
export XDG_CACHE_HOME=$base/cache
if [ ! -f "$ctx/.complete" ]; then
	rm -rf "$ctx"
	mkdir -p "$ctx"
	# 20,000 files in 200 directories, 1..14 KiB (7.5 KiB, 150 MB in all).
	python3 - "$ctx" <<'PY'
import os, sys, random
root = sys.argv[1]
random.seed(1)
for d in range(200):
    p = os.path.join(root, "src", "d%03d" % d)
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, "f%03d.bin" % f), "wb") as fh:
            fh.write(os.urandom(1024 * random.randint(1, 14)))
PY
	cp /usr/bin/busybox "$ctx/busybox"
	cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
COPY src/ /src/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox find /src -type f | /bin/busybox wc -l > /count"]
DF
	touch "$ctx/.complete"
fi
echo "context: $(find "$ctx/src" -type f | wc -l) files, $(du -sh --apparent-size "$ctx" | cut -f1)"
sock=$base/builder.sock
./bin/builder --root "$base/server" serve --addr "unix://$sock" 2>"$base/server.log" &
server=$!
trap 'kill $server; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
remote="./bin/builder --host unix://$sock build --progress plain $ctx"
local="./bin/builder --root $base/local build --progress plain $ctx"
synced() { "$@" 2>&1 | grep -o 'context sync: .*' || true; }
t0=$(date +%s.%N)
echo "first remote build: $(synced $remote) in $(echo "$(date +%s.%N) - $t0" | bc) s"
echo "no-op remote rebuild: $(synced $remote)"
echo "touched one file" >>"$ctx/src/d000/f000.bin"
echo "remote rebuild after touching one file: $(synced $remote)"
$local >/dev/null 2>&1
uptime
# Each run is preceded by a change to one file, so each build syncs it
# and runs the COPY of src/ and the RUN again.
hyperfine --warmup 1 --runs ${RUNS:-5} --export-json "${JSON:-/dev/null}" \
	--prepare "date +%N >>$ctx/src/d100/f050.bin" \
	-n remote "$remote" -n local "$local"
hyperfine --warmup 1 --runs ${RUNS:-5} -n remote-noop "$remote" -n local-noop "$local"
uptime

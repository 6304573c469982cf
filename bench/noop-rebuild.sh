#!/usr/bin/env bash
# No-op rebuild of testdata/demo: wall time of the whole `builder build`
# process once everything is cached. Target (issue 2): under 100 ms.
# Needs root, hyperfine and busybox-static. State dir on tmpfs-backed /tmp
# or wherever BENCH_ROOT points; say which in reports.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
cp /usr/bin/busybox testdata/demo/busybox-"$(dpkg --print-architecture)"
root=${BENCH_ROOT:-$(mktemp -d)}
./bin/builder build --root "$root" -t demo --progress quiet testdata/demo >/dev/null
hyperfine --warmup 3 --runs ${RUNS:-30} --export-json "${JSON:-/dev/null}" \
	"./bin/builder build --root $root -t demo --progress quiet testdata/demo"

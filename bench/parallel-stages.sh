#!/usr/bin/env bash
# Two independent stages, each with 2 s of CPU-bound RUN work, then a stage
# that copies from both (issue 4 target: about 2 s on 2 cores, not 4).
# Built with --no-cache each time. Needs root and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
dir=$(mktemp -d)
root=${BENCH_ROOT:-$(mktemp -d)}
cp /usr/bin/busybox "$dir/busybox"
cat >"$dir/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox

FROM base AS a
RUN ["/bin/busybox", "sh", "-c", "end=$(($(/bin/busybox date +%s)+2)); while [ $(/bin/busybox date +%s) -lt $end ]; do :; done; echo a > /a"]

FROM base AS b
RUN ["/bin/busybox", "sh", "-c", "end=$(($(/bin/busybox date +%s)+2)); while [ $(/bin/busybox date +%s) -lt $end ]; do :; done; echo b > /b"]

FROM base
COPY --from=a /a /a
COPY --from=b /b /b
DF
hyperfine --runs ${RUNS:-5} --export-json "${JSON:-/dev/null}" "./bin/builder build --root $root --no-cache --progress quiet $dir"

#!/usr/bin/env bash
# Sandbox overhead per RUN step: a Dockerfile of N `RUN true` steps on a
# scratch+busybox base, built with --no-cache, minus the same Dockerfile
# with no RUN steps, divided by N. Each step starts a sandbox, runs `true`,
# tears it down and commits an empty diff. Target (issue 2): under 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
make -s build
dir=$(mktemp -d)
root=${BENCH_ROOT:-$(mktemp -d)}
cp /usr/bin/busybox "$dir/busybox"
mkdir -p "$dir/none"
cp /usr/bin/busybox "$dir/none/busybox"
{
	echo "FROM scratch"
	echo "COPY busybox /bin/busybox"
	for _ in $(seq "$N"); do echo 'RUN ["/bin/busybox", "true"]'; done
} >"$dir/Dockerfile"
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$dir/none/Dockerfile"
hyperfine --warmup 1 --runs ${RUNS:-10} --export-json "${JSON:-/dev/null}" \
	"./bin/builder build --root $root --no-cache --progress quiet $dir/none" \
	"./bin/builder build --root $root --no-cache --progress quiet $dir"
echo "per-step overhead = (second - first) / $N"

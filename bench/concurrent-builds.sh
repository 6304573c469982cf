#!/usr/bin/env bash
# Two builds on one state dir at once, each with a step that sleeps 2 s
# (different steps, a shared COPY): wall time of both together against
# each alone, from an empty state dir every run. Target (issue 14): both
# together within 1.2x of the longer alone. Needs root, hyperfine and
# busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
bin=$(pwd)/bin/builder
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in a b; do
	mkdir "$work/$n"
	cp /usr/bin/busybox "$work/$n/busybox"
	printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2; echo %s > /name"]\n' "$n" >"$work/$n/Dockerfile"
done
root=$work/state
build() { echo "$bin build --root $root --progress quiet -t $1 $work/$1 >/dev/null"; }
hyperfine --runs "${RUNS:-5}" --prepare "rm -rf $root" --export-json "${JSON:-/dev/null}" \
	-n alone-a "$(build a)" \
	-n alone-b "$(build b)" \
	-n both "$(build a) & $(build b) & wait"

#!/usr/bin/env bash
# `builder bake` of three targets sharing a base stage (issue 17 target:
# the bake takes at most 1.1x the longest target built alone, base
# included, since the base runs once and the targets at once). The steps
# sleep, so the figure is about scheduling, not CPU. Built with --no-cache
# each time. The bake runs twice: with the default --parallelism (as many
# steps as CPUs, and more while the running ones use no CPU: the three
# sleeps at once even on 2 cores) and with --parallelism 3. The three commands take turns, run by run, so
# that a change in the machine's load affects them alike. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
bin=$PWD/bin/builder
dir=$(mktemp -d)
root=${BENCH_ROOT:-$(mktemp -d)}
json=$(mktemp) # a line per run: command, seconds
trap 'rm -rf "$dir" "$json"; [ -n "${BENCH_ROOT:-}" ] || rm -rf "$root"' EXIT
cp /usr/bin/busybox "$dir/busybox"
cat >"$dir/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2; /bin/busybox cat /proc/sys/kernel/random/uuid > /stamp"]

FROM base AS a
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 1; echo a > /a"]

FROM base AS b
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 1; echo b > /b"]

FROM base AS c
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 1.5; echo c > /c"]
DF
cat >"$dir/docker-bake.hcl" <<'HCL'
group "default" { targets = ["a", "b", "c"] }
target "a" { target = "a" }
target "b" { target = "b" }
target "c" { target = "c" }
HCL
uptime
cd "$dir"
$bin build --root "$root" --progress quiet --target c . >/dev/null # warm-up: a new state directory
for i in $(seq "${RUNS:-7}"); do
	for cmd in "single-c:build --target c ." "bake-abc:bake" "bake-abc-p3:bake --parallelism 3"; do
		start=$(date +%s.%N)
		# shellcheck disable=SC2086 # the command's words
		$bin ${cmd#*:} --root "$root" --no-cache --progress quiet >/dev/null
		echo "${cmd%%:*} $(echo "$(date +%s.%N) - $start" | bc)" >>"$json"
	done
done
uptime
python3 - "$json" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    name, t = line.split()
    times.setdefault(name, []).append(float(t))
s = statistics.median(times["single-c"])
print(f"median of {len(times['single-c'])} runs: single target c {s:.2f} s")
for name in ("bake-abc", "bake-abc-p3"):
    b = statistics.median(times[name])
    print(f"median: {name} {b:.2f} s, ratio {b/s:.2f}x (target <= 1.1x)")
PY

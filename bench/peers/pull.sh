#!/usr/bin/env bash
# Times the cold pull of the debian-dev base (the largest base of run.sh)
# from a loopback registry into an empty state dir, for one or more
# builder binaries, interleaved (old, new, old, new...), so that load on a
# shared machine hits each alike. Each run is `FROM debian-dev` + `RUN
# true` with --progress plain, whose log has a line per layer (fetched in,
# unpacked in). Needs root and the base state run.sh made
# ($PEERS_CACHE/base-state).
#
#   bench/peers/pull.sh BIN...            # RUNS=5 each
#   PROFILE=1 bench/peers/pull.sh BIN     # + a CPU profile per run (BUILDER_CPUPROFILE)
#   STRACE=1 bench/peers/pull.sh BIN      # + strace -c -f per run
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${PEERS_CACHE:-/var/tmp/builder-peers}
runs=${RUNS:-5}
[ $# -gt 0 ] || { echo "usage: pull.sh BUILDER_BINARY..." >&2; exit 2; }
[ -d "$cache/base-state" ] || { echo "pull.sh: no $cache/base-state: run run.sh once" >&2; exit 1; }
out=${OUT:-/var/tmp/builder-peers-pull}
mkdir -p "$out"

# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
workfs_mount "$cache/pull-disk.img" 20G
workfs_registry "$out/registry.log"
"$1" build --root "$cache/base-state" --progress quiet --push -t "$reg/debian-dev" --target dev "$cache/debian" >/dev/null
mkdir -p "$work/ctx"
printf 'ARG REG\nFROM $REG/debian-dev\nRUN true\n' >"$work/ctx/Dockerfile"

echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
	n=0
	for b in "$@"; do
		n=$((n + 1))
		rm -rf "$work/state"
		sync
		pre=()
		[ -n "${STRACE:-}" ] && pre=(strace -c -f -o "$out/strace-$n-$r.txt")
		# CPU time (user, system) beside the wall time: on a machine shared
		# by busy processes the wall time is mostly waiting for a core.
		BUILDER_CPUPROFILE=${PROFILE:+$out/cpu-$n-$r.pprof} /usr/bin/time -o "$out/time-$n-$r.txt" -f '%e s wall, %U s user, %S s sys' \
			"${pre[@]}" "$b" build --root "$work/state" --progress plain \
			--build-arg REG="$reg" "$work/ctx" >"$out/log-$n-$r.txt" 2>&1
		printf 'run %d %s: %s  %s\n' "$r" "$b" "$(tail -1 "$out/time-$n-$r.txt")" \
			"$(grep -o 'layer [0-9a-f]*: .*' "$out/log-$n-$r.txt" | tr '\n' ' ')"
	done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

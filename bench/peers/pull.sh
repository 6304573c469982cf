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
for port in $(shuf -i 20000-60000 -n 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
reg=127.0.0.1:$port
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$work/registry" "$reg" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$out/registry.log" 2>&1 &
pids+=("$!")
for i in $(seq 100); do
	curl -s -o /dev/null "http://$reg/v2/" && break
	sleep 0.1
done
# The registry storage run.sh kept (debian-dev pushed once) when there is
# one: pushing from base-state with a binary whose cache keys differ would
# rebuild debian-dev (minutes).
if [ -d "$cache/base-registry/docker" ]; then
	mkdir -p "$work/registry"
	cp -a "$cache/base-registry/docker" "$work/registry/"
else
	"$1" build --root "$cache/base-state" --progress quiet --push -t "$reg/debian-dev" --target dev "$cache/debian" >/dev/null
fi
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

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
#   STRACE=1 STRACE_OPTS="-T -e trace=syncfs,fsync" ...  # other strace options
#   BUILDKIT=1 bench/peers/pull.sh BIN    # + BuildKit's cold pull in each round
#                                         # (buildctl prune --all first; CPU of
#                                         # buildkitd and buildctl both)
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
if [ -n "${BUILDKIT:-}" ]; then
	bk=${BUILDKIT_BIN:-/tmp/oracle-bk/bin}
	bkaddr=unix://$work/buildkit/buildkitd.sock
	mkdir -p "$work/buildkit"
	printf '[worker.oci]\n  enabled = true\n  gc = false\n[worker.containerd]\n  enabled = false\n[registry."%s"]\n  http = true\n  insecure = true\n' "$reg" >"$work/buildkit/buildkitd.toml"
	"$bk/buildkitd" --config "$work/buildkit/buildkitd.toml" --root "$work/buildkit/root" --addr "$bkaddr" \
		--oci-worker-binary "$(command -v runc)" >"$out/buildkitd.log" 2>&1 &
	bkpid=$!
	pids+=("$bkpid")
	for i in $(seq 60); do
		"$bk/buildctl" --addr "$bkaddr" debug workers >/dev/null 2>&1 && break
		[ "$i" = 60 ] && { echo "pull.sh: buildkitd did not start" >&2; exit 1; }
		sleep 0.5
	done
fi
# cputicks PID: the CPU time of a process and its waited-for children, in
# clock ticks.
cputicks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }

echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
	n=0
	for b in "$@"; do
		n=$((n + 1))
		rm -rf "$work/state"
		sync
		pre=()
		# shellcheck disable=SC2206 # STRACE_OPTS is split on purpose
		[ -n "${STRACE:-}" ] && pre=(strace -f -o "$out/strace-$n-$r.txt" ${STRACE_OPTS:--c})
		# CPU time (user, system) beside the wall time: on a machine shared
		# by busy processes the wall time is mostly waiting for a core.
		BUILDER_CPUPROFILE=${PROFILE:+$out/cpu-$n-$r.pprof} /usr/bin/time -o "$out/time-$n-$r.txt" -f '%e s wall, %U s user, %S s sys' \
			"${pre[@]}" "$b" build --root "$work/state" --progress plain \
			--build-arg REG="$reg" "$work/ctx" >"$out/log-$n-$r.txt" 2>&1
		printf 'run %d %s: %s  %s\n' "$r" "$b" "$(tail -1 "$out/time-$n-$r.txt")" \
			"$(grep -o 'layer [0-9a-f]*: .*' "$out/log-$n-$r.txt" | tr '\n' ' ')"
	done
	if [ -n "${BUILDKIT:-}" ]; then
		"$bk/buildctl" --addr "$bkaddr" prune --all >/dev/null
		sync
		before=$(cputicks "$bkpid")
		/usr/bin/time -o "$out/time-bk-$r.txt" -f '%e s wall, %U s user, %S s sys' \
			"$bk/buildctl" --addr "$bkaddr" build --progress plain --frontend dockerfile.v0 --local context="$work/ctx" \
			--local dockerfile="$work/ctx" --opt build-arg:REG="$reg" >"$out/log-bk-$r.txt" 2>&1
		printf 'run %d buildkit: %s (buildctl); buildkitd %.2f s CPU\n' "$r" "$(tail -1 "$out/time-bk-$r.txt")" \
			"$(awk -v a="$(cputicks "$bkpid")" -v b="$before" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (a - b) / hz }')"
	fi
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

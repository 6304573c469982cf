#!/usr/bin/env bash
# The tinyruns case of run.sh (busybox base from a loopback registry,
# COPY stamp, N `RUN echo i > /fi`, built and pushed) for one or more
# builder binaries, interleaved (old, new, old, new...) so that load on a
# shared machine hits each alike: per round a cold build (new state dir,
# base pulled, new repository) and a touched one (the stamp changed, all
# N steps run again, same repository). Prints wall and CPU time (user,
# system) of each, and with STRACE=1 the count and time of syncfs and
# fsync calls (strace -f). On a fresh journaled ext4 loop file system
# (workfs.sh), where syncfs costs what it costs on a disk. Needs root.
#
#   bench/peers/tinyruns.sh OLD NEW        # RUNS=3 rounds, N=20 steps
#   STRACE=1 bench/peers/tinyruns.sh BIN   # + strace -c -f per build
#   STRACE=log ...                         # + each sync call, its file and time
#   STRACE=proc ...                        # + each process started
#   PROFILE=1 ...                          # + a CPU profile per build
#   PERF=1 ...                             # + perf record -g of the build and its children
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PEERS_CACHE:-/var/tmp/builder-peers}
runs=${RUNS:-3}
n=${N:-20}
[ $# -gt 0 ] || { echo "usage: tinyruns.sh BUILDER_BINARY..." >&2; exit 2; }
out=${OUT:-/var/tmp/builder-peers-tinyruns}
rm -rf "$out"
mkdir -p "$out" "$cache"

# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
workfs_mount "$cache/tinyruns-disk.img" 4G
workfs_registry "$out/registry.log"
# The base, as run.sh makes it.
mkdir -p "$work/busybox" "$work/ctx"
cp "$(command -v busybox)" "$work/busybox/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD ["sh"]\n' >"$work/busybox/Dockerfile"
"$1" build --root "$work/base-state" --progress quiet --push -t "$reg/busybox" "$work/busybox" >/dev/null
{
	printf 'ARG REG\nFROM $REG/busybox\nCOPY stamp /stamp\n'
	for i in $(seq 1 "$n"); do printf 'RUN echo %d > /f%d\n' "$i" "$i"; done
} >"$work/ctx/Dockerfile"
date +%s%N >"$work/ctx/stamp"

# timed NAME BIN ARGS...: one build, its times on one line.
timed() {
	local name=$1 bin=$2
	shift 2
	sync
	local pre=()
	# -w: wall time in the calls; --seccomp-bpf: no stop at other calls.
	[ -n "${STRACE:-}" ] && pre=(strace -c -w -f --seccomp-bpf -e trace=syncfs,fsync,fdatasync -o "$out/strace-$name.txt")
	[ -n "${PERF:-}" ] && pre=(perf record -q -g -o "$out/perf-$name.data" --)
	[ "${STRACE:-}" = proc ] && pre=(strace -f -tt -e trace=execve,clone,clone3,vfork,exit_group -o "$out/strace-$name.txt")
	[ "${STRACE:-}" = log ] && pre=(strace -f -tt -T -y --seccomp-bpf -e trace=syncfs,fsync,fdatasync -o "$out/strace-$name.txt")
	BUILDER_CPUPROFILE=${PROFILE:+$out/cpu-$name.pprof} /usr/bin/time -o "$out/time-$name.txt" -f '%e s wall, %U s user, %S s sys' \
		"${pre[@]}" "$bin" build "$@" >"$out/log-$name.txt" 2>&1
	local s=""
	[ "${STRACE:-}" = 1 ] && s=$(awk '$NF ~ /^(syncfs|fsync|fdatasync)$/ { printf " %s %d calls %.3f s", $NF, $4, $2 }' "$out/strace-$name.txt")
	printf '%-8s %s: %s%s\n' "$name" "$bin" "$(tail -1 "$out/time-$name.txt")" "$s"
}

echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
	k=0
	for b in "$@"; do
		k=$((k + 1))
		rm -rf "$work/state-$k"
		repo="$reg/tiny-$k-$r"
		args=(--root "$work/state-$k" --progress rawjson --build-arg REG="$reg" -t "$repo" --push "$work/ctx")
		timed "cold-$k-$r" "$b" "${args[@]}"
		date +%s%N >>"$work/ctx/stamp"
		timed "touch-$k-$r" "$b" "${args[@]}"
	done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

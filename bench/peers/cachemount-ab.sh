#!/bin/bash
# cachemount-ab.sh BIN... : the QUICK cachemount case cold (pull debian-dev
# from a loopback registry into an empty state dir, `make -j2` of 40 C
# files through ccache in a cache mount, export and push to a new
# repository) timed with one or more builder binaries, interleaved (old,
# new, old, new...) so that load on a shared machine hits each alike.
# Needs root and the bases run.sh kept ($PEERS_CACHE/base-registry).
# Prints per run the wall and CPU time (user+sys, the step's processes
# included: the step's own CPU is on its line of the log) and the largest
# RSS of one process (the builder or a compiler), then the medians; keeps
# each run's --progress plain log (the phases' timings) in $OUT.
#   RUNS=3 (default) rounds; PROF=1: a CPU profile per run (BUILDER_CPUPROFILE);
#   STRACE=1: strace -c -f per run (STRACE_OPTS for other options).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BIN..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
cache=${PEERS_CACHE:-/var/tmp/builder-peers}
runs=${RUNS:-3}
out=${OUT:-/var/tmp/builder-peers-cachemount}
[ -d "$cache/base-registry/docker" ] || { echo "$0: no $cache/base-registry: run run.sh once" >&2; exit 1; }
bins=()
for b in "$@"; do bins+=("$(realpath "$b")"); done
mkdir -p "$out"
rm -f "$out/times"
# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
workfs_mount "$(mktemp -u /var/tmp/cachemount-ab-XXXXXX.img)" 20G
mkdir -p "$work/registry"
cp -a "$cache/base-registry/docker" "$work/registry/"
workfs_registry "$out/registry.log"
# The context of run.sh's cachemount case with QUICK=1 (40 sources).
c=$work/ctx
cachemount_ctx "$c" 40
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
	n=0
	for b in "${bins[@]}"; do
		n=$((n + 1))
		rm -rf "$work/state"
		sync
		pre=()
		# shellcheck disable=SC2206 # STRACE_OPTS is split on purpose
		[ -n "${STRACE:-}" ] && pre=(strace -f -o "$out/strace-$n-$r.txt" ${STRACE_OPTS:--c})
		BUILDER_CPUPROFILE=${PROF:+$out/cpu-$n-$r.pprof} /usr/bin/time -a -o "$out/times" -f "$n %e %U %S %M" \
			"${pre[@]}" "$b" build --root "$work/state" --progress plain --push \
			--build-arg REG="$reg" -t "$reg/cm-$n-$r" "$c" >"$out/log-$n-$r.txt" 2>&1
		printf 'run %d bin %d (%s): %s\n' "$r" "$n" "$b" "$(tail -1 "$out/times" | awk '{ printf "%s s wall, %.2f s cpu, max RSS %d MiB", $2, $3 + $4, $5 / 1024 }')"
	done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '{ k = $1; n[k]++; w[k, n[k]] = $2; u[k, n[k]] = $3 + $4 }
function med(a, k, m,   i, j, t, v) { for (i = 1; i <= m; i++) v[i] = a[k, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
END { for (k in n) printf "median bin %s: wall %.2f s, cpu %.2f s (%d runs)\n", k, med(w, k, n[k]), med(u, k, n[k]), n[k] }' "$out/times" | sort

#!/usr/bin/env bash
# A touched build that ends in a small COPY and a push (issue 15's apt, npm
# and export1g "touched" cells), reduced: FROM a local busybox base, a RUN
# making a few MB, then `COPY stamp /stamp`, built with --push to a
# repository of a loopback Debian docker-registry on a journaled ext4 loop
# file system (as bench/peers/run.sh). It times a no-op rebuild and a
# touched one (stamp changed first) of each binary given, the binaries
# interleaved run by run, each with its own state dir and repository, and
# prints per binary and mode the medians of wall time and CPU (user+sys),
# and the registry requests of the last build by method (the registry's
# access log). Needs root.
#
#   bench/touched-copy.sh BINARY...          # e.g. /tmp/old/builder bin/builder
#   RUNS=15 MB=8 bench/touched-copy.sh ...
#   TRACE=1 bench/touched-copy.sh ...        # also one strace'd touched build each:
#                                            # sync calls and connects
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-10}
mb=${MB:-4}
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
bins=()
for b in "$@"; do bins+=("$(readlink -f "$b")"); done

# shellcheck source=bench/peers/workfs.sh
. "$here/peers/workfs.sh"
workfs_mount "$(mktemp -u /var/tmp/touched-copy-XXXXXX.img)" 4G
workfs_registry "$work/registry.log"

# The base image, as bench/peers/run.sh makes it.
busybox_base "$work/base"
mkdir -p "$work/ctx"
"${bins[-1]}" build --root "$work/base-state" --progress quiet -t "$reg/busybox" --push "$work/base" >/dev/null

echo 0 >"$work/ctx/stamp"
cat >"$work/ctx/Dockerfile" <<EOF
ARG REG
FROM \$REG/busybox
RUN head -c $((mb * 1048576)) /dev/urandom > /data
COPY stamp /stamp
EOF

# build I: binary I's build of the context into its state dir and repository.
build() {
	"${bins[$1]}" build --root "$work/state$1" --progress quiet --build-arg REG="$reg" \
		-t "$reg/touched/b$1:latest" --push "$work/ctx" >/dev/null
}
# timed I MODE: one build; its wall and CPU (user+sys of it and its
# children, from wait4's rusage) in microseconds appended to $work/MODE-I.
timed() {
	sync
	python3 -c '
import resource, subprocess, sys, time
ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
t1 = time.monotonic()
ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
print(int((t1 - t0) * 1e6), int(cpu * 1e6))
sys.exit(rc)
' "${bins[$1]}" build --root "$work/state$1" --progress quiet --build-arg REG="$reg" \
		-t "$reg/touched/b$1:latest" --push "$work/ctx" >>"$work/$2-$1"
}
# requests FROM: the registry's requests logged after line FROM, by method.
requests() {
	tail -n +"$(($1 + 1))" "$work/registry.log" | grep -o 'http.request.method=[A-Z]*' | sort | uniq -c |
		awk '{ sub("http.request.method=", "", $2); printf "%s %s  ", $2, $1 } END { print "" }'
}

for i in "${!bins[@]}"; do build "$i"; build "$i"; done # cold, then warm
for r in $(seq "$runs"); do
	for i in "${!bins[@]}"; do
		echo "$r" >>"$work/ctx/stamp"
		from=$(wc -l <"$work/registry.log")
		timed "$i" touched
		echo "$(requests "$from")" >"$work/req-$i"
		# The build after a touched one stores the changed file's digest
		# (too fresh to trust before): untimed, so the timed no-op is one.
		build "$i"
		timed "$i" noop
	done
done

median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }
echo "runs $runs, RUN layer $mb MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-40s %10s %10s %12s %12s %8s %8s\n' binary "noop ms" "touched ms" "noop cpu ms" "touch cpu ms" "Δ ms" "Δ cpu"
for i in "${!bins[@]}"; do
	nw=$(cut -d' ' -f1 "$work/noop-$i" | median)
	tw=$(cut -d' ' -f1 "$work/touched-$i" | median)
	nc=$(cut -d' ' -f2 "$work/noop-$i" | median)
	tc=$(cut -d' ' -f2 "$work/touched-$i" | median)
	printf '%-40s %10s %10s %12s %12s %8.1f %8.1f\n' "${bins[$i]}" "$nw" "$tw" "$nc" "$tc" \
		"$(echo "$tw - $nw" | bc)" "$(echo "$tc - $nc" | bc)"
	echo "  registry requests of a touched build: $(cat "$work/req-$i")"
done

if [ -n "${TRACE:-}" ]; then
	for i in "${!bins[@]}"; do
		echo "$i" >>"$work/ctx/stamp"
		sync
		strace -f -c -o "$work/strace-$i" -e trace=fsync,fdatasync,syncfs,sync_file_range,connect,rename,openat \
			"${bins[$i]}" build --root "$work/state$i" --progress quiet --build-arg REG="$reg" \
			-t "$reg/touched/b$i:latest" --push "$work/ctx" >/dev/null
		echo "strace -c of a touched build, ${bins[$i]}:"
		awk 'NR > 2 && $NF ~ /^[a-z_]+$/ && $NF != "total" { print "  " $NF, ($4 ~ /^[0-9]+$/ ? $4 : $5) }' "$work/strace-$i"
	done
fi

#!/bin/bash
# bigcopy-ab.sh OLD NEW [PAIRS]: the QUICK bigcopy case (5,000 files of
# 2,500 bytes + 40 MB, `COPY . /data/`, build and push to a loopback
# registry) timed with two builder binaries, interleaved: PAIRS (default 5)
# cold builds each (empty state dir) and PAIRS touched builds each (one
# small file changed). Prints wall, CPU (user+sys) and voluntary context
# switches per run, and the medians. Everything lives on a fresh journaled
# ext4 file system (workfs.sh); run as root. Set PROF=FILE to write CPU
# profiles (BUILDER_CPUPROFILE) FILE-old-cold etc.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD NEW [PAIRS]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
old=$(realpath "$1") new=$(realpath "$2") pairs=${3:-5}
# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
workfs_mount "$(mktemp -u /var/tmp/bigcopy-ab-XXXXXX.img)" 8G
workfs_registry "$work/registry.log"
mkdir -p "$work/busybox"
cp "$(command -v busybox)" "$work/busybox/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/usr/local/bin:/usr/bin:/bin\n' >"$work/busybox/Dockerfile"
"$old" build --root "$work/base-state" --progress quiet --push -t "$reg/busybox" "$work/busybox" >/dev/null
# The context of run.sh's bigcopy case with QUICK=1.
text() { seq "$2" 1000000000 | head -c "$1" || true; }
c=$work/ctx
for d in $(seq -w 0 24); do
	mkdir -p "$c/files/d$d"
	text 500000 $((10#$d * 1000000)) | split -b 2500 -d -a 3 - "$c/files/d$d/f"
done
mkdir -p "$c/big"
for d in 0 1; do
	head -c 10485760 /dev/urandom >"$c/big/random$d"
	text 10485760 $((d * 5000000)) >"$c/big/text$d"
done
printf 'ARG REG\nFROM $REG/busybox\nCOPY . /data/\n' >"$c/Dockerfile"
run() { # run LABEL BIN MODE
	local root=$work/state-$1
	[ "$3" = cold ] && rm -rf "$root" && sync
	[ "$3" = touched ] && date +%s%N >>"$c/files/d10/f100"
	BUILDER_CPUPROFILE=${PROF:+$PROF-$1-$3} /usr/bin/time -f "$1 $3 %e %U %S %w" -a -o "$work/times" \
		"$2" build --root "$root" --progress quiet --push --build-arg REG="$reg" -t "$reg/bc-$1" "$c" >/dev/null
}
uptime
for i in $(seq "$pairs"); do
	run old "$old" cold
	run new "$new" cold
done
for i in $(seq "$pairs"); do
	run old "$old" touched
	run new "$new" touched
done
uptime
echo "label mode wall_s cpu_s vcsw"
awk '{ print $1, $2, $3, $4 + $5, $6 }' "$work/times"
awk '{ k = $1 " " $2; n[k]++; w[k, n[k]] = $3; u[k, n[k]] = $4 + $5 }
function med(a, k, m,   i, j, t, v) { for (i = 1; i <= m; i++) v[i] = a[k, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
END { for (k in n) printf "median %s: wall %.2f s, cpu %.2f s\n", k, med(w, k, n[k]), med(u, k, n[k]) }' "$work/times" | sort

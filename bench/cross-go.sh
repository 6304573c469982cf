#!/usr/bin/env bash
# Issue 13's target: a two-platform build (linux/amd64,linux/arm64) of a
# cross-compiling Go "hello" (a FROM --platform=$BUILDPLATFORM stage with Go,
# GOARCH=$TARGETARCH) against the host-platform build alone; target at most
# 1.15x. The Go base image is the host's Go toolchain (go env GOROOT)
# copied onto a busybox base (no registry, no network), built once and kept
# in the bench's local store. Each timed build changes main.go, so the go
# build step runs again while the base and the Go build cache (a cache
# mount, as cross-compiling Dockerfiles use it) stay warm; the two kinds of
# build alternate, RUNS times each; medians are printed with the ratio,
# the CPU time of each kind (builder and the steps' processes) and the
# CPU-bound floor of the ratio on this machine's cores.
# Needs root and busybox-static. Say the machine's load in reports.
# BUILDER=path times that binary instead of this tree's (an old build, say;
# with BENCH_ROOT kept, the base and the Go build cache stay warm across
# runs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
builder=${BUILDER:-}
if [ -z "$builder" ]; then
	make -s build
	builder=$PWD/bin/builder
fi
work=$(mktemp -d)
root=${BENCH_ROOT:-$work/state}
trap 'rm -rf --one-file-system "$work"' EXIT

# The Go base: busybox, and GOROOT without its tests and docs.
goroot=$(go env GOROOT)
mkdir -p "$work/base/go"
cp /usr/bin/busybox "$work/base/busybox"
for d in bin pkg src lib go.env VERSION; do
	[ -e "$goroot/$d" ] && cp -a "$goroot/$d" "$work/base/go/"
done
cat >"$work/base/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /root && chmod 1777 /tmp"]
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/bin HOME=/root CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
DF
echo "cross-go: the Go base image (once, untimed)" >&2
"$builder" build --root "$root" --progress quiet -t cross-go-base "$work/base" >/dev/null

mkdir -p "$work/app"
printf 'module hello\n\ngo 1.22\n' >"$work/app/go.mod"
cat >"$work/app/Dockerfile" <<'DF'
FROM --platform=$BUILDPLATFORM cross-go-base AS build
WORKDIR /src
COPY go.mod main.go ./
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/hello .
FROM scratch
COPY --from=build /out/hello /hello
ENTRYPOINT ["/hello"]
DF
build() { # build PLATFORMS: prints the wall time in ms and the CPU time (user+sys, with the steps' processes) in ms
	# A new main.go each time (runs in a subshell: no counter survives).
	printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello %s") }\n' "$(date +%s%N)" >"$work/app/main.go"
	local TIMEFORMAT='%R %U %S' t
	t=$({ time "$builder" build --root "$root" --progress quiet --platform "$1" -t cross-go "$work/app" >/dev/null 2>"$work/build.err"; } 2>&1) ||
		{ cat "$work/build.err" >&2; return 1; }
	awk '{printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000}' <<<"$t"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

host=linux/$(go env GOARCH)
echo "cross-go: warm-up (fills the Go build cache for both platforms)" >&2
build "linux/amd64,linux/arm64" >/dev/null
build "$host" >/dev/null
one=() two=() cpu1=() cpu2=()
for _ in $(seq "$RUNS"); do
	r=$(build "$host")
	read -r w c <<<"$r"
	one+=("$w") cpu1+=("$c")
	r=$(build linux/amd64,linux/arm64)
	read -r w c <<<"$r"
	two+=("$w") cpu2+=("$c")
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
c1=$(printf '%s\n' "${cpu1[@]}" | median)
c2=$(printf '%s\n' "${cpu2[@]}" | median)
echo "host platform ($host) alone, ms: ${one[*]} (median $m1; CPU median $c1 ms)"
echo "linux/amd64,linux/arm64, ms:     ${two[*]} (median $m2; CPU median $c2 ms)"
awk -v a="$m1" -v b="$m2" 'BEGIN {printf "ratio two/one = %.2fx (target <= 1.15x)\n", b / a}'
# N cores do at most N s of CPU work a second: the two-platform build
# cannot take less than its CPU time / N, whatever is overlapped. Read it on
# an idle machine (under load the walls are inflated and it says little).
ncpu=$(nproc)
awk -v a="$m1" -v c="$c2" -v n="$ncpu" 'BEGIN {printf "CPU-bound floor of two/one = %.2fx (two-platform CPU / %d cores / host-only wall)\n", c / n / a, n}'
# What is left once the cores are the limit: the two-platform wall over its
# own CPU time spread on every core (1.00 = every core busy all along). The
# Go toolchain's CPU is most of the CPU time, so on few cores this, not
# two/one, says how well builder overlaps the platforms.
awk -v b="$m2" -v c="$c2" -v n="$ncpu" 'BEGIN {printf "two-platform wall / its CPU-bound floor = %.2fx (wall / (CPU / %d cores))\n", b / (c / n), n}'
"$builder" run --root "$root" --platform linux/arm64 cross-go
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Package installs on the default network (a private namespace through
# slirp4netns or pasta) against the host's network: `apt-get update &&
# apt-get install curl ca-certificates` in a RUN step on a Debian 12 base
# made by debootstrap. Target (issue 9): default within 1.1x of host.
# Not run by CI. Needs root, debootstrap, hyperfine and the Debian mirror.
#
#   bench/network-apt.sh                   # 5 runs each, after a warmup
#   QUICK=1 bench/network-apt.sh           # one run each, to check it works
#   BUILDER_NETWORK_HELPER=pasta bench/network-apt.sh   # time pasta instead
#
# The debootstrap tree is kept in $BENCH_CACHE (default /var/tmp/builder-bench-
# bookworm) and the state dir in $BENCH_ROOT, so only the first run pays for
# them. MIRROR defaults to the one this machine's apt uses.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${MIRROR:-http://deb.debian.org/debian}
cache=${BENCH_CACHE:-/var/tmp/builder-bench-bookworm}
root=${BENCH_ROOT:-$(mktemp -d)}
make -s build

if [ ! -e "$cache/ctx/rootfs/etc/debian_version" ]; then
	rm -rf "$cache"
	mkdir -p "$cache/ctx"
	debootstrap --variant=minbase bookworm "$cache/ctx/rootfs" "$MIRROR" >"$cache/debootstrap.log"
	# The image's apt must not start with a warm package cache.
	rm -rf "$cache/ctx/rootfs/var/lib/apt/lists/"* "$cache/ctx/rootfs/var/cache/apt/"*.bin
fi
# Device nodes cannot be COPYed (and the sandbox makes its own /dev).
find "$cache/ctx/rootfs/dev" -mindepth 1 -delete
cat >"$cache/ctx/Dockerfile" <<'EOF'
FROM scratch AS base
COPY rootfs/ /

FROM base AS install
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null && \
    curl -sSfo /dev/null http://deb.debian.org/debian/dists/bookworm/Release
EOF
build="./bin/builder build --root $root --progress quiet --no-cache-filter install"
# The base stage once, outside the timing.
$build "$cache/ctx" >/dev/null

runs=${RUNS:-5}
warmup=1
if [ -n "${QUICK:-}" ]; then runs=1 warmup=0; fi
hyperfine --warmup "$warmup" --runs "$runs" --export-json "${JSON:-/dev/null}" \
	-n host "$build --network=host --allow network.host $cache/ctx" \
	-n default "$build $cache/ctx"
echo "target: default / host <= 1.1"

#!/usr/bin/env bash
# The fsync elision (seccomp.ElideSync) measured on the apt case of
# run.sh: `apt-get install curl ca-certificates` on Debian from packages
# already downloaded by an earlier step, so no network is timed; the step
# is run again each time (--no-cache-filter). Compares builder with the
# sync calls elided (the default) and run (BUILDER_STEP_FSYNC=run), with the
# state dir on a fresh journaled ext4 loop file system, where fsync costs
# what it costs on a real disk (on tmpfs it is free). Needs root and the
# Debian tree run.sh keeps in $PEERS_CACHE. Not run by CI.
#
#   bench/peers/fsync-elision.sh          # 5 runs each
#   QUICK=1 bench/peers/fsync-elision.sh  # 2 runs each
#   BUILDER=/path/to/builder ...          # that binary, not make build's
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PEERS_CACHE:-/var/tmp/builder-peers}
# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
if [ ! -e "$cache/debian/rootfs/etc/debian_version" ]; then
	echo "fsync-elision.sh: no Debian tree in $cache/debian: run bench/peers/run.sh first" >&2
	exit 1
fi
cd "$here/../.."
builder=${BUILDER:-}
if [ -z "$builder" ]; then
	make -s build
	builder=./bin/builder
fi
workfs_mount "$cache/fsync-disk.img" 20G
ctx=$work/ctx
mkdir -p "$ctx"
cp -a "$cache/debian/rootfs" "$ctx/rootfs"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY rootfs/ /
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only --no-install-recommends curl ca-certificates >/dev/null

FROM base AS install
RUN DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
DF
build="$builder build --root $work/state --progress quiet --no-cache-filter install $ctx"
$build >/dev/null
runs=${RUNS:-5}
[ -z "${QUICK:-}" ] || runs=2
hyperfine --warmup 1 --runs "$runs" --export-json "${JSON:-/dev/null}" \
	-n 'fsync run' "BUILDER_STEP_FSYNC=run $build" -n 'fsync elided' "$build"

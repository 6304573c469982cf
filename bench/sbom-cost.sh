#!/usr/bin/env bash
# Issue 13's target: what --sbom adds to a build of a Debian image with curl
# installed (target at most 1 s), and that a build without it pays nothing.
# The Debian root file system comes from DEBIAN_ROOTFS (default: the peers
# harness's debootstrap tree, else debootstrap --variant=minbase against the
# host's mirror); curl is installed once, untimed. Timed: a rebuild written
# to an OCI tar (the export, and with --sbom the scan, run every time), with
# and without --sbom, alternating. Needs root, hyperfine, network to the
# Debian mirror once. Say the machine's load in reports.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
make -s build build-sbom
builder=$PWD/bin/builder
work=$(mktemp -d)
trap 'rm -rf --one-file-system "$work"' EXIT
rootfs=${DEBIAN_ROOTFS:-/var/tmp/builder-peers/debian/rootfs}
mkdir -p "$work/base"
if [ -d "$rootfs" ]; then
	cp -a "$rootfs" "$work/base/rootfs"
else
	mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	debootstrap --variant=minbase bookworm "$work/base/rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
fi
cat >"$work/base/Dockerfile" <<'DF'
FROM scratch
COPY rootfs/ /
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends curl >/dev/null && rm -rf /var/lib/apt/lists/*
DF
root=$work/state
echo "sbom-cost: the Debian + curl image (once, untimed)" >&2
"$builder" build --root "$root" --progress quiet -t sbom-debian-curl "$work/base" >/dev/null
mkdir -p "$work/app"
printf 'FROM sbom-debian-curl\nLABEL case=sbom\n' >"$work/app/Dockerfile"
b="$builder build --root $root --progress quiet -o type=oci,dest=$work/out.tar $work/app"
uptime
hyperfine -N --warmup 1 --runs "$RUNS" -n without "$b" -n with-sbom "$b --sbom=true" --export-json "$work/r.json" >/dev/null
python3 - "$work/r.json" <<'PY'
import json, statistics, sys
r = {x['command']: x for x in json.load(open(sys.argv[1]))['results']}
w, s = (statistics.median(r[k]['times']) for k in ('without', 'with-sbom'))
print(f"without --sbom {w*1000:.0f} ms, with {s*1000:.0f} ms: --sbom adds {(s-w)*1000:.0f} ms (target <= 1000 ms)")
PY
uptime

#!/usr/bin/env bash
# Regenerates testdata/conformance/*/expected.json with a real BuildKit:
# builds buildkitd and buildctl from the Go module proxy (buildkit.sh), and
# runs TestConformanceOracle, which starts buildkitd (runc worker, private
# socket and state dir, stopped by PID at the end), serves the base images
# from a loopback registry, builds every case with buildctl and rewrites its
# expected.json. Not run by CI. See testdata/conformance/README.md.
#
# usage: run.sh [-case SUBSTRING]        (as root)
# env:   BUILDKIT_VERSION (default latest), ORACLE_WORK (default /tmp/builder-oracle)
set -euo pipefail

filter=
if [ "${1:-}" = -case ]; then
	filter=${2:?-case needs a name}
fi
repo=$(cd "$(dirname "$0")/../../.." && pwd)
work=${ORACLE_WORK:-/tmp/builder-oracle}

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (buildkitd with runc needs it)" >&2
	exit 1
fi
command -v runc >/dev/null || apt-get install -y runc

bin=$("$(dirname "$0")/buildkit.sh" "$work")
echo "run.sh: BuildKit in $bin"

cd "$repo"
go test ./build/conformance -run 'TestConformanceOracle$' -count=1 -timeout 3h -v \
	-conformance.buildkit "$bin" ${filter:+-conformance.case "$filter"}

#!/usr/bin/env bash
# Regenerates testdata/conformance/*/expected.json with a real BuildKit:
# downloads BuildKit with the Go module proxy, builds buildkitd and buildctl,
# and runs TestConformanceOracle, which starts buildkitd (runc worker, private
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
want=${BUILDKIT_VERSION:-latest}

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (buildkitd with runc needs it)" >&2
	exit 1
fi
command -v runc >/dev/null || apt-get install -y runc

mkdir -p "$work"
# The module's go.mod has exclude and replace directives, which only apply
# to the main module: build from a copy of the module directory.
info=$(cd "$work" && go mod download -json "github.com/moby/buildkit@$want")
ver=$(sed -n 's/^\t"Version": "\(.*\)",$/\1/p' <<<"$info")
dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$info")
bin=$work/buildkit-$ver
if [ ! -x "$bin/buildkitd" ] || [ ! -x "$bin/buildctl" ]; then
	rm -rf "$work/src-$ver"
	cp -r "$dir" "$work/src-$ver"
	chmod -R u+w "$work/src-$ver"
	(cd "$work/src-$ver" && GOFLAGS=-mod=mod go build -o "$bin/" \
		-ldflags "-X github.com/moby/buildkit/version.Version=$ver -X github.com/moby/buildkit/version.Revision=goproxy" \
		./cmd/buildkitd ./cmd/buildctl)
fi
echo "run.sh: BuildKit $ver in $bin"

cd "$repo"
go test ./build/conformance -run 'TestConformanceOracle$' -count=1 -timeout 3h -v \
	-conformance.buildkit "$bin" ${filter:+-conformance.case "$filter"}

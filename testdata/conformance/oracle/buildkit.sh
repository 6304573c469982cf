#!/usr/bin/env bash
# Builds BuildKit's buildkitd and buildctl from the Go module proxy (no code
# vendored) into WORK/buildkit-VERSION, unless they are there already, and
# prints that directory on stdout. Used by run.sh here and by
# bench/peers/run.sh.
#
# usage: buildkit.sh WORK
# env:   BUILDKIT_VERSION (default latest)
set -euo pipefail
work=${1:?usage: buildkit.sh WORK}
want=${BUILDKIT_VERSION:-latest}

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
		./cmd/buildkitd ./cmd/buildctl) >&2
fi
echo "$bin"

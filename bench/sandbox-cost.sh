#!/usr/bin/env bash
# What the sandbox's defences cost per RUN step, in one run on one machine
# (issue 9 target: seccomp + cgroup + network setup add at most 3 ms a step).
#
# Four builds of N `RUN true` steps with --no-cache, each minus the same
# Dockerfile without RUN steps, divided by N:
#   before    builder as of BASE_REV (default cd6e340: no seccomp, no cgroup,
#             host network), re-executing itself as the init
#   hardened  this tree built the same way (plain go build: self re-exec),
#             --network=none: seccomp, a cgroup, the in-root mount hardening
#   network   the same with the default private network (slirp4netns)
#   init      this tree as `make build` makes it (the small embedded init),
#             default network
# Needs root, hyperfine, git, slirp4netns.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
RUNS=${RUNS:-10}
BASE_REV=${BASE_REV:-cd6e340}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true; rm -rf --one-file-system "$work"' EXIT
git worktree add -q --detach "$work/base-src" "$BASE_REV"
(cd "$work/base-src" && go build -o "$work/before" ./cmd/builder)
go build -o "$work/self" ./cmd/builder
make -s build
mkdir -p "$work/none" "$work/steps"
for d in none steps; do cp /usr/bin/busybox "$work/$d/busybox"; done
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$work/none/Dockerfile"
{
	printf 'FROM scratch\nCOPY busybox /bin/busybox\n'
	for _ in $(seq "$N"); do echo 'RUN ["/bin/busybox", "true"]'; done
} >"$work/steps/Dockerfile"
b() { # b NAME BINARY ARGS...: the pair of commands for one variant
	local name=$1 bin=$2
	shift 2
	echo "$bin build --root $work/state-$name --no-cache --progress quiet $* $work/none"
	echo "$bin build --root $work/state-$name --no-cache --progress quiet $* $work/steps"
}
mapfile -t cmds < <(b before "$work/before"; b hardened "$work/self" --network=none; b network "$work/self"; b init ./bin/builder)
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/out.json" "${cmds[@]}" >&2
jq -r --argjson n "$N" '
	[.results[].median] as $m
	| def step(i): (($m[2*i+1] - $m[2*i]) / $n * 1000);
	"per step (median, \($n) steps): before \(step(0)*100|round/100) ms, hardened \(step(1)*100|round/100) ms, network \(step(2)*100|round/100) ms, init \(step(3)*100|round/100) ms",
	"seccomp + cgroup + hardening: \((step(1)-step(0))*100|round/100) ms a step; private network: \((step(2)-step(1))*100|round/100) ms; small init: \((step(3)-step(2))*100|round/100) ms",
	([.results[] | .user + .system] as $c
	| def cpu(i): (($c[2*i+1] - $c[2*i]) / $n * 1000);
	"CPU per step (user+sys, mean; steadier on a shared machine): before \(cpu(0)*100|round/100) ms, hardened \(cpu(1)*100|round/100) ms, network \(cpu(2)*100|round/100) ms, init \(cpu(3)*100|round/100) ms")
' "$work/out.json"

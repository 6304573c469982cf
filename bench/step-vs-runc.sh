#!/usr/bin/env bash
# Per-step sandbox overhead against an OCI runtime, in one run on one
# machine (issue 9 target: builder's per-step cost at most 0.25x of
# `runc run` of a `true` container on the same rootfs).
#
# builder: N `RUN true` steps built with --no-cache (start a sandbox, run
# `true`, tear down, commit an empty diff), minus the same Dockerfile with
# no RUN steps, divided by N. runc/crun: N sequential `run` of a container
# whose rootfs is the same busybox tree and whose process is `true`,
# divided by N. Needs root, hyperfine, runc (crun too when installed).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
RUNS=${RUNS:-10}
make -s build
work=$(mktemp -d)
trap 'rm -rf --one-file-system "$work"' EXIT
root="$work/state"
mkdir -p "$work/none" "$work/steps" "$work/bundle/rootfs/bin"
for d in none steps; do cp /usr/bin/busybox "$work/$d/busybox"; done
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$work/none/Dockerfile"
{
	printf 'FROM scratch\nCOPY busybox /bin/busybox\n'
	for _ in $(seq "$N"); do echo 'RUN ["/bin/busybox", "true"]'; done
} >"$work/steps/Dockerfile"

cp /usr/bin/busybox "$work/bundle/rootfs/bin/busybox"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/busybox", "true"] | .root.readonly = false' \
	"$work/bundle/config.json" >"$work/bundle/c.json" && mv "$work/bundle/c.json" "$work/bundle/config.json"
cat >"$work/oci-loop.sh" <<LOOP
#!/bin/sh
# \$1: runtime binary; N sequential containers on one bundle.
i=0
while [ \$i -lt $N ]; do
	"\$1" --root "$work/\$(basename \$1)-state" run -b "$work/bundle" "bench-\$\$-\$i" </dev/null >/dev/null || exit 1
	i=\$((i + 1))
done
LOOP
chmod +x "$work/oci-loop.sh"

cmds=("./bin/builder build --root $root --no-cache --progress quiet $work/none"
	"./bin/builder build --root $root --no-cache --progress quiet $work/steps"
	"$work/oci-loop.sh $(command -v runc)")
# crun refuses some hosts (cgroup v1 controllers beside a v2 mount: "cgroups
# in hybrid mode not supported"); then it is left out, saying why.
if command -v crun >/dev/null; then
	if out=$(crun --root "$work/crun-probe" run -b "$work/bundle" probe </dev/null 2>&1); then
		cmds+=("$work/oci-loop.sh $(command -v crun)")
	else
		echo "crun left out: $out" >&2
	fi
fi
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/out.json" "${cmds[@]}" >&2
# Wall time is the target; CPU time (user+sys of each command and its
# children, mean) says the same with less noise on a machine that others
# share, where a wall-time ratio mostly measures the load.
jq -r --argjson n "$N" '
	[.results[].median] as $m
	| [.results[] | .user + .system] as $c
	| (($m[1] - $m[0]) / $n * 1000) as $step
	| (($c[1] - $c[0]) / $n * 1000) as $cstep
	| "builder per step: \($step * 100 | round / 100) ms (median, \($n) steps)",
	  "runc run per container: \($m[2] / $n * 1000 * 100 | round / 100) ms; builder/runc = \($step / ($m[2] / $n * 1000) * 1000 | round / 1000)",
	  (if ($m | length) > 3 then "crun run per container: \($m[3] / $n * 1000 * 100 | round / 100) ms; builder/crun = \($step / ($m[3] / $n * 1000) * 1000 | round / 1000)" else empty end),
	  "CPU per step: builder \($cstep * 100 | round / 100) ms, runc \($c[2] / $n * 1000 * 100 | round / 100) ms; builder/runc = \($cstep / ($c[2] / $n * 1000) * 1000 | round / 1000)"
' "$work/out.json"

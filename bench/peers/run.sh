#!/usr/bin/env bash
# Times builder against BuildKit (buildkitd + buildctl, runc worker) and
# Buildah (Debian's, runc) on the same cases in one run, build + push to a
# loopback registry, and writes the medians and ratios to
# bench/peers/results.md (issue 15). Not run by CI. Needs root.
#
#   bench/peers/run.sh                  # every case, 3 cold / 10 no-op / 5 touched runs
#   QUICK=1 bench/peers/run.sh          # 1 run each
#   CASES="bigcopy tinyruns" bench/peers/run.sh
#   QUICK=1 PEERS="builder buildkit" RUNS=3/5/3 bench/peers/run.sh
#                                       # QUICK sizes, no Buildah, 3 cold /
#                                       # 5 no-op / 3 touched runs: medians
#                                       # of the two ratios that matter in
#                                       # about the time QUICK takes
#
# Modes, for each case and builder: cold (empty build cache, base image
# pulled again, pushed to a new repository), no-op (same build again, same
# repository), touched (one file of the context changed first; the steps
# after it run again).
#
# env: BUILDKIT_BIN (a directory with buildkitd and buildctl; default: built
#        from the Go module proxy by testdata/conformance/oracle/buildkit.sh),
#      BUILDKIT_VERSION (default v0.34.2), MIRROR (default: the host's apt
#        mirror), PEERS_CACHE (debootstrap tree, base images; default
#        /var/tmp/builder-peers), PEERS_DISK (size of the work file system,
#        default 60G), OUT (default bench/peers/results.md).
#
# Everything the builders write (state dirs, contexts, registry) lives on a
# fresh journaled ext4 file system on a loop device (workfs.sh says why).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PEERS_CACHE:-/var/tmp/builder-peers}
out=${OUT:-$here/results.md}
all_cases="bigcopy cachemount apt tinyruns parallel gomod npm export1g"
cases=${CASES:-$all_cases}
# QUICK: one run of each, no warm-up before the no-op run (the cold run
# just filled the cache), and smaller contexts (bigcopy 5,000 files + 40 MB,
# export1g 256 MiB, cachemount 40 sources, tinyruns 20 RUNs: Buildah took
# 20 minutes for 40 under load); results.md says so.
if [ -n "${QUICK:-}" ]; then
	cold_runs=1 noop_runs=1 touched_runs=1 warmup=0
	bigcopy_dirs=25 bigcopy_big=2 cachemount_n=40 export_pairs=2 tinyruns_n=20
else
	cold_runs=3 noop_runs=10 touched_runs=5 warmup=1
	bigcopy_dirs=100 bigcopy_big=5 cachemount_n=80 export_pairs=8 tinyruns_n=40
fi
# RUNS=COLD/NOOP/TOUCHED overrides the run counts (a warm-up run precedes
# the no-op runs when there are more than one).
if [ -n "${RUNS:-}" ]; then
	IFS=/ read -r cold_runs noop_runs touched_runs <<<"$RUNS"
	warmup=$((noop_runs > 1 ? 1 : 0))
fi
# PEERS: the builders timed (builder is always first); Buildah's columns
# read "not run" without it.
peers=${PEERS:-builder buildkit buildah}
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (buildkitd and buildah with runc need it)" >&2
	exit 1
fi
need=()
for p in buildah:buildah runc:runc docker-registry:docker-registry debootstrap:debootstrap \
	hyperfine:hyperfine jq:jq busybox:busybox-static mkfs.ext4:e2fsprogs; do
	command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

# What the builders printed, kept after the run.
rm -rf "$cache/logs"
mkdir -p "$cache/logs"
cd "$repo"
make -s build
builder=$repo/bin/builder
go build -o "$cache/rsspeak" ./bench/peers/rsspeak

bkver=${BUILDKIT_VERSION:-v0.34.2}
if [ -n "${BUILDKIT_BIN:-}" ]; then
	bk=$BUILDKIT_BIN
elif [ -x /tmp/oracle-bk/bin/buildctl ] && [ "$(/tmp/oracle-bk/bin/buildkitd --version 2>/dev/null | awk "{ print \$3 }")" = "$bkver" ]; then
	# The conformance oracle's build of the same version: not built again.
	bk=/tmp/oracle-bk/bin
else
	bk=$(BUILDKIT_VERSION=$bkver "$repo/testdata/conformance/oracle/buildkit.sh" "$cache/buildkit")
fi

# --- the work file system, the registry and buildkitd, undone on exit ---
# shellcheck source=bench/peers/workfs.sh
. "$here/workfs.sh"
cgroups=()
peers_cleanup() {
	"$work/bin/buildah" unmount --all >/dev/null 2>&1
	for ((i = ${#cgroups[@]} - 1; i >= 0; i--)); do rmdir "${cgroups[$i]}" 2>/dev/null; done
}
on_exit=peers_cleanup
workfs_mount "$cache/disk.img" "${PEERS_DISK:-60G}"
mkdir -p "$work/ctx" "$work/json" "$work/bin" "$work/buildah/tmp"

# A free port: one where a connection is refused.
for port in $(shuf -i 20000-60000 -n 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
reg=127.0.0.1:$port
cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
EOF
start_registry() {
	docker-registry serve "$work/registry.yml" >"$cache/logs/registry.log" 2>&1 &
	pids+=("$!")
	for i in $(seq 100); do
		curl -s -o /dev/null "http://$reg/v2/" && break
		[ "$i" = 100 ] && { echo "run.sh: the registry did not start (see $cache/logs/registry.log)" >&2; exit 1; }
		sleep 0.1
	done
}

# BuildKit's steps go in cgroups beneath ours (as the conformance oracle's),
# made here and removed at exit. Buildah keeps its default: given this as
# --cgroup-parent, its runc fails now and then on cgroup v1 with "failed to
# write a *:* rwm ... devices.deny: invalid argument".
mine=$(awk -F: '$2 == "memory" || ($1 == "0" && m == "") { m = $3 } END { print m }' /proc/self/cgroup)
cgparent=${mine%/}/builder-peers-$$
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then hier=(/sys/fs/cgroup); else hier=(/sys/fs/cgroup/*); fi
for h in "${hier[@]}"; do
	if [ ! -d "$h$cgparent" ]; then mkdir -p "$h$cgparent" && cgroups+=("$h$cgparent"); fi
done

bkaddr=unix://$work/buildkit/buildkitd.sock
mkdir -p "$work/buildkit"
cat >"$work/buildkit/buildkitd.toml" <<EOF
[worker.oci]
  enabled = true
  gc = false
  defaultCgroupParent = "$cgparent"
[worker.containerd]
  enabled = false
[registry."$reg"]
  http = true
  insecure = true
EOF
"$bk/buildkitd" --config "$work/buildkit/buildkitd.toml" --root "$work/buildkit/root" --addr "$bkaddr" \
	--oci-worker-binary "$(command -v runc)" >"$cache/logs/buildkitd.log" 2>&1 &
pids+=("$!")
for i in $(seq 60); do
	"$bk/buildctl" --addr "$bkaddr" debug workers >/dev/null 2>&1 && break
	[ "$i" = 60 ] && { echo "run.sh: buildkitd did not start:" >&2; tail -20 "$cache/logs/buildkitd.log" >&2; exit 1; }
	sleep 0.5
done

# Buildah on its own storage in the work file system, as a script because
# hyperfine runs commands with sh; TMPDIR is where Buildah keeps the
# directories of RUN --mount=type=cache.
cat >"$work/bin/buildah" <<EOF
#!/bin/sh
TMPDIR=$work/buildah/tmp exec buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver overlay "\$@"
EOF
chmod +x "$work/bin/buildah"
# Buildah makes its storage on first use: not inside the timing.
"$work/bin/buildah" images >/dev/null

# --- base images, made locally and pushed to the loopback registry ---
# Debian: debootstrap --variant=minbase once, kept in $cache. The base
# images are built with builder in a state dir of their own in $cache, so
# later runs only push them.
if [ ! -e "$cache/debian/rootfs/etc/debian_version" ]; then
	mirror=${MIRROR:-$(awk '/^URIs:/ { print $2; exit } /^deb / { print $2; exit }' \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)}
	rm -rf "$cache/debian"
	mkdir -p "$cache/debian"
	echo "run.sh: debootstrap bookworm from ${mirror:-http://deb.debian.org/debian} (minutes)" >&2
	debootstrap --variant=minbase bookworm "$cache/debian/rootfs" "${mirror:-http://deb.debian.org/debian}" \
		>"$cache/debian/debootstrap.log"
	# The sandboxes make their own /dev; device nodes cannot be COPYed.
	find "$cache/debian/rootfs/dev" -mindepth 1 -delete
	rm -rf "$cache/debian/rootfs/var/lib/apt/lists/"* "$cache/debian/rootfs/var/cache/apt/"*.bin
fi
cat >"$cache/debian/Dockerfile" <<'EOF'
FROM scratch AS debian
COPY rootfs/ /
CMD ["bash"]

# The toolchains of the compile, Go and npm cases.
FROM debian AS dev
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      gcc libc6-dev make ccache golang-go nodejs npm ca-certificates >/dev/null && \
    rm -rf /var/lib/apt/lists/*
# The host's CA bundle: where TLS to the Go proxy and npm goes through an
# intercepting proxy, its CA is only there.
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
EOF
cp /etc/ssl/certs/ca-certificates.crt "$cache/debian/host-ca.crt"
busybox_base "$cache/busybox"
# The base images are built and pushed once; the registry's storage of them
# is then kept in $cache/base-registry, named by what made them, and later
# runs start from a copy of it: a new builder binary may miss the base
# state's cache (cache keys change between versions), and rebuilding
# debian-dev costs minutes.
bases_key=$({
	cat "$cache/busybox/Dockerfile" "$cache/busybox/busybox" "$cache/debian/Dockerfile" "$cache/debian/host-ca.crt"
	stat -c %Y "$cache/debian/rootfs/etc/debian_version"
} | sha256sum | cut -c1-16)
if [ -e "$cache/base-registry/$bases_key" ] && [ -d "$cache/base-registry/docker" ]; then
	echo "run.sh: base images from $cache/base-registry" >&2
	mkdir -p "$work/registry"
	cp -a "$cache/base-registry/docker" "$work/registry/"
	start_registry
else
	start_registry
	base() { "$builder" build --root "$cache/base-state" --progress quiet --push "$@" >/dev/null; }
	echo "run.sh: base images" >&2
	base -t "$reg/busybox" "$cache/busybox"
	# Only the busybox cases: debian-dev (minutes of apt-get) is not built.
	if [[ " $cases " =~ \ (apt|cachemount|gomod|npm)\  ]]; then
		base -t "$reg/debian" --target debian "$cache/debian"
		base -t "$reg/debian-dev" --target dev "$cache/debian"
		rm -rf "$cache/base-registry"
		mkdir -p "$cache/base-registry"
		cp -a "$work/registry/docker" "$cache/base-registry/"
		touch "$cache/base-registry/$bases_key"
	fi
fi

# --- the cases: each makes its context in $work/ctx/NAME and a script
# $work/touch-NAME that changes one file of it ---
touch_script() { # touch_script CASE FILE FORMAT: FORMAT gets a unique number
	cat >"$work/touch-$1" <<EOF
#!/bin/sh
printf '$3\n' "\$(date +%s%N)" >>"$work/ctx/$1/$2"
EOF
	chmod +x "$work/touch-$1"
}

# text BYTES FIRST prints BYTES of numbers counting from FIRST (seq ends
# on SIGPIPE, which pipefail would make an error).
text() { seq "$2" 1000000000 | head -c "$1" || true; }

# 20,000 files of 2,500 bytes (50 MB) and ten of 10 MB (100 MB), one COPY
# (QUICK: 5,000 and four).
case_bigcopy() {
	local c=$work/ctx/bigcopy d
	for d in $(seq -w 0 $((bigcopy_dirs - 1))); do
		mkdir -p "$c/files/d$d"
		text 500000 $((10#$d * 1000000)) | split -b 2500 -d -a 3 - "$c/files/d$d/f"
	done
	mkdir -p "$c/big"
	for d in $(seq 0 $((bigcopy_big - 1))); do
		head -c 10485760 /dev/urandom >"$c/big/random$d"
		text 10485760 $((d * 5000000)) >"$c/big/text$d"
	done
	printf 'ARG REG\nFROM $REG/busybox\nCOPY . /data/\n' >"$c/Dockerfile"
	touch_script bigcopy files/d10/f100 '%s'
}

# An incremental C compile: make with ccache in a cache mount; touched
# changes one of 80 sources, so ccache compiles one and hits 79.
case_cachemount() {
	cachemount_ctx "$work/ctx/cachemount" "$cachemount_n"
	touch_script cachemount f20.c 'int touched_%s = 1;'
}

case_apt() {
	local c=$work/ctx/apt
	mkdir -p "$c"
	echo 0 >"$c/app.conf"
	cat >"$c/Dockerfile" <<'EOF'
ARG REG
FROM $REG/debian
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
COPY app.conf /etc/app.conf
EOF
	touch_script apt app.conf '%s'
}

# 40 tiny RUNs (QUICK: 20) after a COPY; touched changes the copied file, so all run.
case_tinyruns() {
	local c=$work/ctx/tinyruns i
	mkdir -p "$c"
	echo 0 >"$c/stamp"
	{
		printf 'ARG REG\nFROM $REG/busybox\nCOPY stamp /stamp\n'
		for i in $(seq 1 "$tinyruns_n"); do printf 'RUN echo %d > /f%d\n' "$i" "$i"; done
	} >"$c/Dockerfile"
	touch_script tinyruns stamp '%s'
}

# Two stages of about 1 s of CPU each, then a final stage: 23 instructions.
# touched changes a file of stage a.
case_parallel() {
	local c=$work/ctx/parallel
	mkdir -p "$c"
	echo a >"$c/a.txt"
	echo b >"$c/b.txt"
	cat >"$c/Dockerfile" <<'EOF'
ARG REG
FROM $REG/busybox AS a
COPY a.txt /a.txt
RUN head -c 200000000 /dev/zero | sha256sum > /a.sum
RUN echo a1 > /a1
ENV A=1
WORKDIR /wa
RUN cp /a.sum /a.txt /wa/

FROM $REG/busybox AS b
COPY b.txt /b.txt
RUN head -c 200000000 /dev/zero | sha256sum > /b.sum
RUN echo b1 > /b1
ENV B=1
WORKDIR /wb
RUN cp /b.sum /b.txt /wb/

FROM $REG/busybox
COPY --from=a /wa/ /out/
COPY --from=b /wb/ /out/
RUN cat /out/*.sum > /out/all
ENV APP=peers
WORKDIR /out
USER 1000
CMD ["cat", "/out/all"]
EOF
	touch_script parallel a.txt '%s'
}

# A Go program with modules from the Go module proxy, Debian's Go, the
# module and build caches in cache mounts; touched changes main.go.
case_gomod() {
	local c=$work/ctx/gomod
	mkdir -p "$c"
	cp "$here/cases/gomod/"* "$c/"
	cat >"$c/Dockerfile" <<'EOF'
ARG REG
FROM $REG/debian-dev
ENV GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -o /usr/local/bin/app . && app
EOF
	touch_script gomod main.go 'var touched%s = 1'
}

# npm ci of 92 packages from the npm registry (npm's cache in a cache
# mount); touched changes the application file copied after it.
case_npm() {
	local c=$work/ctx/npm
	mkdir -p "$c"
	cp "$here/cases/npm/"* "$c/"
	cat >"$c/Dockerfile" <<'EOF'
ARG REG
FROM $REG/debian-dev
ENV npm_config_cache=/root/.npm
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY index.js ./
EOF
	touch_script npm index.js '// %s'
}

# One 1 GiB layer (512 MiB random, 512 MiB text, in 64 MiB files; QUICK:
# 256 MiB), then a small COPY; touched changes the copied file, so only the
# small layer is new but the whole image is exported and pushed again. The
# text is made once in the context and copied in by the RUN: busybox seq
# writing 512 MiB took minutes.
case_export1g() {
	local c=$work/ctx/export1g n=$export_pairs
	mkdir -p "$c"
	echo 0 >"$c/stamp"
	text 67108864 1 >"$c/text"
	cat >"$c/Dockerfile" <<EOF
ARG REG
FROM \$REG/busybox
RUN --mount=type=bind,source=text,target=/text mkdir /data && for i in \$(seq 1 $n); do head -c 67108864 /dev/urandom > /data/r\$i; cat /text > /data/t\$i; done
COPY stamp /stamp
EOF
	touch_script export1g stamp '%s'
}

# --- timing ---
# newrepo CASE BUILDER: the command that names a new repository for the
# builder's cold run; its no-op and touched runs push to the same one (a
# first push to another repository would upload every blob again).
newrepo() { echo "echo peers/$1-cold-\$(date +%s%N) >$work/repo-$2"; }

# bench CASE MODE RUNS WARMUP: hyperfine per builder, JSON in $work/json.
bench() {
	local c=$1 mode=$2 runs=$3 warmup=$4 ctx=$work/ctx/$1 b prep
	# The image of each builder, in the repository its cold run named.
	local -A img=(
		[builder]="$reg/\$(cat $work/repo-builder)"
		[buildkit]="$reg/\$(cat $work/repo-buildkit)"
		[buildah]="$reg/\$(cat $work/repo-buildah)"
	)
	local -A cmd=(
		[builder]="$builder build --root $work/builder --progress quiet --build-arg REG=$reg -t ${img[builder]}:builder --push $ctx"
		[buildkit]="$bk/buildctl --addr $bkaddr build --progress plain --frontend dockerfile.v0 --local context=$ctx --local dockerfile=$ctx --opt build-arg:REG=$reg --output type=image,name=${img[buildkit]}:buildkit,push=true,registry.insecure=true"
		[buildah]="$work/bin/buildah bud --quiet --layers --runtime runc --tls-verify=false --build-arg REG=$reg -t ${img[buildah]}:buildah $ctx && $work/bin/buildah push --quiet --tls-verify=false ${img[buildah]}:buildah docker://${img[buildah]}:buildah"
	)
	local -A cold=(
		[builder]="rm -rf $work/builder"
		[buildkit]="$bk/buildctl --addr $bkaddr prune --all >/dev/null"
		[buildah]="$work/bin/buildah rmi --all --force >/dev/null 2>&1; $work/bin/buildah rm --all >/dev/null 2>&1; rm -rf $work/buildah/tmp/*"
	)
	local -A exes=(
		[builder]="$builder"
		[buildkit]="$bk/buildkitd $bk/buildctl"
		[buildah]="$(command -v buildah)"
	)
	for b in $peers; do
		# Each timed run starts with nothing dirty in the page cache: the
		# builders share the work file system, and a sync call of one
		# (builder's syncfs at commit, an fsync that commits the ext4
		# journal) would otherwise write out what the one before left.
		case $mode in
		cold) prep="${cold[$b]} && $(newrepo "$c" "$b") && sync" ;;
		noop) prep=sync ;;
		touched) prep="$work/touch-$c && sync" ;;
		esac
		local rss=
		if [ "$mode" = cold ]; then
			# shellcheck disable=SC2086 # exes is a list
			"$cache/rsspeak" ${exes[$b]} >"$work/json/$c-$b.rss" &
			rss=$!
			sleep 0.1
		fi
		echo "run.sh: $c $mode $b" >&2
		if ! hyperfine --runs "$runs" --warmup "$warmup" --prepare "$prep" \
			--show-output --export-json "$work/json/$c-$mode-$b.json" -n "$b" "${cmd[$b]}" \
			>"$cache/logs/$c-$mode-$b.log" 2>&1; then
			rm -f "$work/json/$c-$mode-$b.json"
			echo "run.sh: $c $mode $b failed; see $cache/logs/$c-$mode-$b.log" >&2
		fi
		if [ -n "$rss" ]; then
			kill -INT "$rss"
			wait "$rss" || true
		fi
	done
}

# The median of a hyperfine JSON in seconds, or "" if it is missing.
median() { [ -e "$1" ] && jq -r '.results[0].median' "$1" || true; }

# --- results.md ---
fmt() { [ -n "$1" ] && printf '%.3f' "$1" || printf 'failed'; }
# cell BUILDER VALUE: fmt, or "not run" for a builder PEERS left out.
cell() { if [[ " $peers " == *" $1 "* ]]; then fmt "$2"; else printf 'not run'; fi; }
ratio() { if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else printf '–'; fi; }
rss() { # rss CASE BUILDER: MiB, the sum over its executables
	[ -s "$work/json/$1-$2.rss" ] && awk '{ s += $2 } END { printf "%.0f", s / 1024 }' "$work/json/$1-$2.rss" || printf '?'
}
# results writes $out from the cases done so far (after each one, so an
# interrupted run still leaves a table).
results() {
	echo "# builder, BuildKit and Buildah side by side (bench/peers/run.sh)"
	echo
	echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`${QUICK:+QUICK=1 }${PEERS:+PEERS=\"$PEERS\" }${RUNS:+RUNS=$RUNS }bench/peers/run.sh\`"
	echo "(builders: $peers; runs per builder: cold $cold_runs, no-op $noop_runs after $warmup warm-up, touched $touched_runs${QUICK:+; QUICK sizes: bigcopy $((bigcopy_dirs * 200)) files + $((bigcopy_big * 20)) MB, cachemount $cachemount_n sources, export1g $((export_pairs * 128)) MiB, tinyruns $tinyruns_n RUNs}); the run took $(( ($(date +%s) - started) / 60 )) min so far."
	echo "Medians in seconds of build + push to a loopback registry (Debian docker-registry);"
	echo "ratios are medians of builder ÷ the peer (below 1: builder is faster)."
	echo
	echo "- machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
	echo "- load average (1, 5, 15 min) at the start: ${load_start}; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- builder $("$builder" version 2>/dev/null | awk '{ print $NF; exit }') at $(git -C "$repo" rev-parse --short HEAD) (steps' fsync elided: $([ "${BUILDER_STEP_FSYNC:-}" = run ] && echo no || echo yes)); $("$bk/buildkitd" --version | awk '{ print "BuildKit", $3 }') (runc worker, gc off); $(buildah --version | cut -d' ' -f1-3) (overlay, runc, --layers); $(runc --version | head -1)"
	echo "- storage: every state dir, context and the registry on a fresh journaled ext4 file system on a loop device (the root file system is ext4 without a journal, slow after large deletes; tmpfs would hide fsync)"
	echo "- network of RUN steps: each builder's default (builder: private namespace through slirp4netns or pasta; BuildKit: host, no CNI configured; Buildah: CNI bridge)"
	echo "- cold: empty build cache (builder: new state dir; BuildKit: \`buildctl prune --all\`; Buildah: \`rmi --all\`, cache mounts removed), base image pulled again, pushed to a new repository; no-op: the same build again; touched: one context file changed first"
	echo
	echo "| case | mode | builder | BuildKit | Buildah | builder ÷ BuildKit | builder ÷ Buildah | load at start |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	for c in $done_cases; do
		for m in cold noop touched; do
			b=$(median "$work/json/$c-$m-builder.json")
			k=$(median "$work/json/$c-$m-buildkit.json")
			h=$(median "$work/json/$c-$m-buildah.json")
			echo "| $c | $m | $(cell builder "$b") | $(cell buildkit "$k") | $(cell buildah "$h") | $(ratio "$b" "$k") | $(ratio "$b" "$h") | ${load[$c]} |"
		done
	done
	echo
	echo "Peak RSS in MiB during the cold builds (the largest VmHWM of any one process of"
	echo "each executable; BuildKit: buildkitd + buildctl; step processes not counted):"
	echo
	echo "| case | builder | BuildKit | Buildah | builder ÷ BuildKit |"
	echo "|---|---:|---:|---:|---:|"
	for c in $done_cases; do
		echo "| $c | $(rss "$c" builder) | $(rss "$c" buildkit) | $(rss "$c" buildah) | $(ratio "$(rss "$c" builder)" "$(rss "$c" buildkit)") |"
	done
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A load
done_cases=
for c in $cases; do
	rm -rf "$work/ctx/$c"
	"case_$c"
	load[$c]=$(cut -d' ' -f1-3 /proc/loadavg)
	bench "$c" cold "$cold_runs" 0
	bench "$c" noop "$noop_runs" "$warmup"
	bench "$c" touched "$touched_runs" 0
	done_cases+=" $c"
	results >"$out"
	cp "$work/json/$c"-* "$cache/logs/" 2>/dev/null || true
done
echo "run.sh: wrote $out; took $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s" >&2

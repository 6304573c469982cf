#!/usr/bin/env bash
# Exporting and pushing an image with a 1 GiB layer of mixed files
# (issue 6 targets: peak RSS of the build under 200 MB; pushing within 1.3x
# of `skopeo copy` of the same image from an OCI layout). Each push goes to
# a fresh Debian docker-registry on loopback, so nothing is skipped as
# already present. Files live on tmpfs (/dev/shm). Needs root, skopeo,
# docker-registry and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
work=$(mktemp -d /dev/shm/builder-1g-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
cp /usr/bin/busybox "$work/ctx/busybox"
cat >"$work/ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
# 1 GiB: 512 MiB of random bytes and 512 MiB of text, in 64 MiB files.
RUN ["/bin/busybox", "sh", "-c", "mkdir /data && for i in 0 1 2 3 4 5 6 7; do /bin/busybox head -c 67108864 /dev/urandom > /data/r$i; /bin/busybox seq 1 20000000 | /bin/busybox head -c 67108864 > /data/t$i; done"]
DF
export SOURCE_DATE_EPOCH=1700000000
echo "== build and export (gzip), peak RSS"
/usr/bin/time -f "wall %e s, max RSS %M KB" ./bin/builder build --root "$work/state" -t big --progress quiet \
	-o type=oci,dest="$work/layout",tar=false "$work/ctx"

registry() { # registry NAME PORT: start a fresh registry
	mkdir -p "$work/$1"
	cat >"$work/$1.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/$1
http:
  addr: 127.0.0.1:$2
YML
	docker-registry serve "$work/$1.yml" >"$work/$1.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$2/v2/" && return; sleep 0.1; done
	echo "registry $1 did not start" >&2
	exit 1
}
registry r1 5071
registry r2 5072
echo "== builder push"
./bin/builder tag --root "$work/state" big 127.0.0.1:5071/big:1
/usr/bin/time -f "builder push: wall %e s, max RSS %M KB" ./bin/builder push --root "$work/state" 127.0.0.1:5071/big:1
echo "== skopeo copy"
/usr/bin/time -f "skopeo copy: wall %e s, max RSS %M KB" skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout" docker://127.0.0.1:5072/big:1

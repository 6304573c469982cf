#!/usr/bin/env bash
# No-op rebuild of a 3-stage, 25-instruction Dockerfile whose context has
# 5,000 files (issue 4 target: under 50 ms wall for the whole process).
# The context lives on tmpfs (/dev/shm), the state dir in $BENCH_ROOT or a
# temp dir. The base image is made from the host's busybox inside the
# Dockerfile, so no registry is involved. Needs root and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
ctx=${BENCH_CTX:-/dev/shm/builder-bench-5000}
root=${BENCH_ROOT:-$(mktemp -d)}
rm -rf "$ctx" && mkdir -p "$ctx/src"
cp /usr/bin/busybox "$ctx/busybox"
for d in $(seq 0 49); do
	mkdir -p "$ctx/src/d$d"
	for f in $(seq 0 99); do echo "file $d/$f" >"$ctx/src/d$d/f$f.txt"; done
done
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "for a in $(/bin/busybox --list); do [ -e /bin/$a ] || /bin/busybox ln -s busybox /bin/$a; done"]
ENV PATH=/bin
WORKDIR /work
ARG VERSION=1
LABEL version=$VERSION

FROM base AS build
COPY src/ /work/src/
RUN find /work/src -type f | wc -l > /work/count
RUN cat /work/count
ENV BUILT=yes
WORKDIR /work/out
RUN cp /work/count /work/out/count
RUN id > /work/out/id
USER 1000:1000

FROM base
COPY --from=build /work/out/count /count
COPY --from=build /work/out/id /id
ENV APP=demo
EXPOSE 8080
LABEL stage=final
WORKDIR /app
USER 1000
CMD ["cat", "/count"]
DF
./bin/builder build --root "$root" -t bench-large --progress quiet "$ctx" >/dev/null
hyperfine --warmup 3 --runs ${RUNS:-30} --export-json "${JSON:-/dev/null}" "./bin/builder build --root $root -t bench-large --progress quiet $ctx"

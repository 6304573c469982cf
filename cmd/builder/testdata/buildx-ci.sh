#!/bin/sh
# A CI job written with the flags buildx's documentation shows. It runs
# with BUILDX="docker buildx" on a Docker machine, or with builder in its
# place. REGISTRY is where the base image is and the result goes.
set -eu
: "${BUILDX:=docker buildx}"
: "${REGISTRY:?set REGISTRY=host:port}"
IMAGE="$REGISTRY/ci/app"
export TOKEN=ci-token-value

# Build, test-friendly labels and annotations, cache, metadata, push.
$BUILDX build \
  --pull \
  --platform linux/amd64 \
  --file Dockerfile \
  --target release \
  --build-arg "BASE=$REGISTRY/base/busybox:1" \
  --build-arg VERSION=1.2.3 \
  --label org.opencontainers.image.source=https://git.example/app \
  --annotation "org.opencontainers.image.description=built in CI" \
  --annotation "manifest-descriptor:org.opencontainers.image.version=1.2.3" \
  --secret id=token,env=TOKEN \
  --add-host docs.example:10.0.0.1 \
  --shm-size 128m \
  --ulimit nofile=1024:2048 \
  --network default \
  --provenance=false \
  --sbom=false \
  --cache-to type=local,dest=buildcache,mode=max \
  --cache-from type=local,src=buildcache \
  --metadata-file metadata.json \
  --iidfile iid.txt \
  --progress plain \
  --tag "$IMAGE:1.2.3" \
  --tag "$IMAGE:latest" \
  --push \
  .

# The same image as an OCI layout tarball, quietly: stdout is the digest.
$BUILDX build -q --target release \
  --build-arg "BASE=$REGISTRY/base/busybox:1" --build-arg VERSION=1.2.3 \
  --label org.opencontainers.image.source=https://git.example/app \
  --annotation "org.opencontainers.image.description=built in CI" \
  --annotation "manifest-descriptor:org.opencontainers.image.version=1.2.3" \
  --secret id=token,env=TOKEN --add-host docs.example:10.0.0.1 \
  --shm-size 128m --ulimit nofile=1024:2048 \
  --output type=oci,dest=app-oci.tar . > oci-digest.txt

# Lint only.
$BUILDX build --call=check --build-arg "BASE=$REGISTRY/base/busybox:1" .

# Every target of docker-bake.hcl, with an override, and the definition.
$BUILDX bake --print --set "*.args.BASE=$REGISTRY/base/busybox:1" > bake-print.json
$BUILDX bake --set "*.args.BASE=$REGISTRY/base/busybox:1" --metadata-file bake-metadata.json

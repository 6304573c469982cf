# builder: build, test and demo targets. `make test` is what .ci/run calls.

GO      ?= go
ROOT    ?= $(CURDIR)/.state
TIMEOUT ?= 12m

# Debian packages the tests and the demo use; `make deps` installs the
# missing ones (as root), so the two README commands work on a fresh machine.
DEB_PACKAGES ?= busybox-static docker-registry apache2-utils uidmap git bzip2 openssh-client podman runc tmux debootstrap slirp4netns passt qemu-user-static binfmt-support skopeo

.PHONY: all build build-sbom sbom-test deps test fmt-check vet tidy-check unit rootless kustomize demo bench clean

all: build

# The sandbox init is a binary of its own, embedded in builder (it starts
# several times faster than builder); a plain `go build ./cmd/builder`
# works too and re-executes builder itself as the init.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o cmd/builder/builder-init.bin ./cmd/builder-init
	$(GO) build -tags embedinit -ldflags "-X main.initBinarySum=$$(sha256sum cmd/builder/builder-init.bin | cut -c1-64)" -o bin/builder ./cmd/builder

# The SBOM scanner (anchore/syft) is a module and binary of its own: builder
# runs it only for --sbom, so syft's size and package initialisation never
# reach a build without it (cmd/builder-sbom/README.md has the figures).
# Not part of `make test` nor CI: even narrowed to four catalogers it links
# 1,269 packages (go-getter's cloud SDKs come with syft's file package), over
# 12 CPU-minutes (743 s) to compile cold. CI tests builder's side with a stand-in
# scanner (build: TestSBOM*). `make sbom-test` builds and tests the scanner;
# `make unit` then also runs the SBOM tests of attest and build against
# bin/builder-sbom (the Debian ones with BUILDER_TEST_DEBIAN=1).
# CGO_ENABLED=0: go-rpmutils then uses a Go zstd instead of compiling
# DataDog/zstd's C sources (same SBOMs; a static binary).
# -s -w: no symbol table or DWARF (95 → 67 MB to map at each start; the
# build info syft's version is read from stays).
build-sbom:
	cd cmd/builder-sbom && CGO_ENABLED=0 $(GO) build -ldflags="-s -w" -o ../../bin/builder-sbom .

sbom-test: build-sbom
	cd cmd/builder-sbom && $(GO) vet ./... && $(GO) mod tidy -diff && CGO_ENABLED=0 $(GO) test -count=1 ./...

# Everything, integration tests included: CI runs as root, so tests that need
# root run there and skip (saying why) elsewhere. -race needs cgo.
test: deps fmt-check vet tidy-check kustomize unit rootless

# The integration tests once more as unprivileged users (rootless mode, with
# subordinate ids and with the single-id fallback). Needs root to create the
# users; as an ordinary user `make unit` already runs rootless.
rootless:
	@if [ "$$(id -u)" = 0 ]; then bash .ci/rootless-tests; else echo "rootless: skipped (not root; the unit tests above ran rootless)"; fi

# deploy/kubernetes renders with kubectl's built-in kustomize, down to
# Debian 12's kubectl 1.20 (package kubernetes-client, which .ci/run
# installs; not in DEB_PACKAGES because it conflicts with other packages
# that ship /usr/bin/kubectl, and any kubectl will do). Its manifests are
# decoded strictly by the Go test in deploy/kubernetes.
kustomize:
	@if command -v kubectl >/dev/null; then \
		kubectl kustomize deploy/kubernetes | grep -q '^kind: StatefulSet$$' || { echo "kubectl kustomize deploy/kubernetes failed"; exit 1; }; \
	elif [ -n "$$CI" ]; then echo "kubectl missing (Debian: apt-get install kubernetes-client)"; exit 1; \
	else echo "kustomize: skipped (no kubectl; Debian: apt-get install kubernetes-client)"; fi

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi

# Every Go file but those in hidden dirs (.git, .state) and testdata.
fmt-check:
	@unformatted="$$(find . -type f -name '*.go' -not -path './.*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

vet:
	$(GO) vet ./...

# go.mod lists exactly what the code imports, direct deps not marked
# // indirect.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

unit:
	$(if $(wildcard bin/builder-sbom),BUILDER_SBOM=$(CURDIR)/bin/builder-sbom) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TIMEOUT) ./...

# Then the same Dockerfile for linux/amd64 and linux/arm64 (testdata/demo/
# platforms.sh; skipped, saying why, where QEMU emulation is missing).
demo: deps build
	cp /usr/bin/busybox testdata/demo/busybox-$$(dpkg --print-architecture)
	./bin/builder build --root $(ROOT) -t demo testdata/demo
	./bin/builder run --root $(ROOT) demo
	testdata/demo/platforms.sh ./bin/builder $(ROOT)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 20x ./...

# Each fuzz target for FUZZTIME, one at a time. Seeds live in each
# package's testdata/fuzz/<Target>/ and run as ordinary tests in `make test`;
# a crasher found here lands there too: keep it as a regression test.
.PHONY: fuzz
FUZZTIME ?= 1m
FUZZ_TARGETS ?= ./frontend/dockerfile:FuzzBuild ./frontend/dockerfile:FuzzImageConfig \
	./internal/archive:FuzzExtract ./source/localctx:FuzzDockerignore ./source/localctx:FuzzChecksum \
	./cmd/builder:FuzzFlags ./cache/remote:FuzzCacheConfig
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test $$pkg -run "^$$name$$" -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s; \
	done

# --one-file-system: never follow a mount left behind in the state dir by a
# killed build into the files it was bound from.
clean:
	rm -rf bin testdata/demo/busybox-*
	rm -rf --one-file-system $(CURDIR)/.state

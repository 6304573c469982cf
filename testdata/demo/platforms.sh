#!/usr/bin/env bash
# The two-platform part of `make demo`: builds testdata/demo for linux/amd64
# and linux/arm64 in one solve (the arm64 RUN steps under QEMU user
# emulation), keeps the index in the local store and reads it back: the
# platforms `builder images` lists, and `uname -m` in each platform's image.
# Without an emulator for the other platform (or its busybox) it says why
# and stops, without failing the demo.
#
# usage: platforms.sh BUILDER ROOT
set -euo pipefail
builder=${1:?usage: platforms.sh BUILDER ROOT}
root=${2:?usage: platforms.sh BUILDER ROOT}
demo=$(cd "$(dirname "$0")" && pwd)

host=$(dpkg --print-architecture)
case $host in
amd64) other=arm64 qemu=qemu-aarch64 ;;
arm64) other=amd64 qemu=qemu-x86_64 ;;
*) echo "demo: two-platform build skipped (the demo pairs amd64 and arm64; this host is $host)"; exit 0 ;;
esac

skip() {
	echo "demo: two-platform build skipped: $*"
	exit 0
}

# Register the emulators as .ci/run does (Debian's qemu-user-static, with
# the F flag); only root can.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/$qemu" ] && [ "$(id -u)" = 0 ] && [ -e "/usr/share/binfmts/$qemu" ]; then
	[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
	update-binfmts --enable "$qemu" >/dev/null 2>&1 || true
fi
if ! grep -qs '^enabled' "$binfmt/$qemu"; then
	skip "no QEMU emulator for linux/$other is registered (as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable $qemu; \`$builder doctor\` shows what is there)"
fi

# busybox-static for the other architecture, from Debian's archive.
if [ ! -s "$demo/busybox-$other" ]; then
	if ! dpkg --print-foreign-architectures | grep -qx "$other"; then
		[ "$(id -u)" = 0 ] || skip "dpkg lacks the $other architecture (as root: dpkg --add-architecture $other && apt-get update)"
		dpkg --add-architecture "$other"
		apt-get update -qq
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	chmod 0777 "$tmp" # apt-get download as root drops to _apt
	(cd "$tmp" && apt-get download -qq "busybox-static:$other" >/dev/null) || skip "apt-get download busybox-static:$other failed"
	dpkg-deb --fsys-tarfile "$tmp"/busybox-static_*_"$other".deb | tar -xO ./bin/busybox >"$tmp/busybox"
	chmod 0755 "$tmp/busybox"
	mv "$tmp/busybox" "$demo/busybox-$other"
fi

echo "demo: building for linux/amd64 and linux/arm64 in one solve"
"$builder" build --root "$root" --platform linux/amd64,linux/arm64 -t demo-multi "$demo"
"$builder" images --root "$root" | awk 'NR == 1 || $1 == "demo-multi:latest"'
for p in linux/amd64 linux/arm64; do
	printf '%s: uname -m = %s\n' "$p" "$("$builder" run --root "$root" --platform "$p" demo-multi uname -m)"
done

#!/usr/bin/env bash
# emulate-pod.sh BUILDER: runs a build with BUILDER (bin/builder) the way
# statefulset.yaml runs it, in a podman container standing in for the pod
# (as root, podman with runc): a user namespace of 65536 ids (hostUsers:
# false), uid 1000, only SETUID/SETGID, /proc unmasked, seccomp unconfined,
# newuidmap/newgidmap with file capabilities as image/Dockerfile makes them.
# Then once without each setting, each of which must fail: the evidence
# behind statefulset.yaml's comments. The rootfs holds the host's
# newuidmap, newgidmap, busybox and their libraries (no base image needed).
set -euo pipefail
builder=$(realpath "${1:?usage: emulate-pod.sh BUILDER}")
here=$(cd "$(dirname "$0")" && pwd)
base=300000 # host id of the pod's root
root=$(mktemp -d /tmp/emulate-pod.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
[ -z "${KEEP:-}" ] || trap - EXIT
chmod 0755 "$root" # the pod's root (host id $base) reaches its rootfs through it
R=$root/rootfs
mkdir -p "$R"/usr/bin "$R"/etc "$R"/tmp "$R"/home/builder/demo "$R"/var/lib/builder "$R"/proc "$R"/sys "$R"/dev
for l in bin lib lib64 sbin; do ln -s usr/$l "$R/$l"; done
ln -s bin "$R/usr/sbin"
cp /usr/bin/busybox /usr/bin/newuidmap /usr/bin/newgidmap "$builder" "$R/usr/bin/"
for f in $(ldd /usr/bin/newuidmap /usr/bin/newgidmap "$builder" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | sort -u); do
	mkdir -p "$R/usr$(dirname "${f#/usr}")"
	cp -L "$f" "$R/usr${f#/usr}"
done
printf 'root:x:0:0::/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nbuilder:x:1000:\n' >"$R/etc/group"
echo builder:1001:64535 >"$R/etc/subuid"
cp "$R/etc/subuid" "$R/etc/subgid"
touch "$R/etc/hosts" "$R/etc/resolv.conf"
cp -r "$here/../../testdata/demo/." "$R/home/builder/demo/"
cp /usr/bin/busybox "$R/home/builder/demo/busybox-$(dpkg --print-architecture)"
chmod 1777 "$R/tmp"
chown -hR $base:$base "$R"
chown -R $((base + 1000)):$((base + 1000)) "$R/home/builder" "$R/var/lib/builder"
# v3 file capabilities owned by the pod's root, as the image layer gives them.
chmod 0755 "$R/usr/bin/newuidmap" "$R/usr/bin/newgidmap"
setcap -n $base cap_setuid=ep "$R/usr/bin/newuidmap"
setcap -n $base cap_setgid=ep "$R/usr/bin/newgidmap"

# run WANT NAME PODMAN-FLAGS...: one build in a fresh state dir, which
# must end as WANT (built or failed).
status=0
run() {
	local want=$1 name=$2 got
	shift 2
	rm -rf "${R:?}/var/lib/builder/"*
	if podman --runtime runc run --rm --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network=none \
		--uidmap 0:$base:65536 --gidmap 0:$base:65536 --user 1000:1000 --cap-drop=all \
		-e HOME=/home/builder -e BUILDER_NETWORK_HELPER=none -w /home/builder "$@" \
		--rootfs "$R" /usr/bin/builder build --root /var/lib/builder -t demo demo >"$root/out" 2>&1; then
		got=built
	else
		got=failed
	fi
	echo "$name: $got $(grep -m1 -oE '(sandbox setup|rootless|unshare|Error).{0,110}' "$root/out" || true)"
	if [ "$got" != "$want" ]; then
		echo "  want $want:"; tail -5 "$root/out"; status=1
	fi
}
caps=--cap-add=setuid,setgid
unmask=--security-opt=unmask=ALL
seccomp=--security-opt=seccomp=unconfined
run built "as statefulset.yaml" $caps $unmask $seccomp
run failed "without procMount: Unmasked" $caps $seccomp
run failed "without seccomp Unconfined" $caps $unmask
run failed "with allowPrivilegeEscalation: false" $caps $unmask $seccomp --security-opt=no-new-privileges
run failed "without SETUID/SETGID" $unmask $seccomp
exit $status

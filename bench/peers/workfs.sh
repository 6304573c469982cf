# Sourced by the scripts here: workfs_mount IMAGE SIZE makes a fresh
# journaled ext4 file system of SIZE in the sparse file IMAGE, mounts it on
# a new directory $work, and at exit stops the processes in $pids (by PID),
# runs $on_exit, unmounts $work and removes it and IMAGE. The root file
# system of the machines this was written on is ext4 without a journal,
# pathologically slow after large deletes; tmpfs would hide fsync costs.
pids=()
on_exit=:
workfs_mount() {
	work=$(mktemp -d /var/tmp/builder-peers-work-XXXXXX)
	workfs_image=$1
	trap workfs_cleanup EXIT
	# Bash runs the EXIT trap on a signal only if the signal is trapped.
	trap 'exit 130' INT TERM
	truncate -s "$2" "$workfs_image"
	mkfs.ext4 -q -F "$workfs_image"
	mount -o loop "$workfs_image" "$work"
}
workfs_cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	$on_exit
	if mountpoint -q "$work"; then
		umount -R "$work" 2>/dev/null || umount -R -l "$work"
	fi
	rm -rf "$work" "$workfs_image"
}
# workfs_registry LOG starts docker-registry on a free loopback port (one
# where a connection is refused), storing in $work/registry and logging to
# LOG; it sets $reg to its address and adds it to $pids.
workfs_registry() {
	local port i
	for port in $(shuf -i 20000-60000 -n 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	reg=127.0.0.1:$port
	printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$work/registry" "$reg" >"$work/registry.yml"
	docker-registry serve "$work/registry.yml" >"$1" 2>&1 &
	pids+=("$!")
	for i in $(seq 100); do
		curl -s -o /dev/null "http://$reg/v2/" && return 0
		sleep 0.1
	done
	echo "the registry did not start (see $1)" >&2
	return 1
}

# busybox_base DIR writes the context of the busybox base image the cases
# build on: the host's static busybox and its applet links.
busybox_base() {
	mkdir -p "$1"
	cp "$(command -v busybox)" "$1/busybox"
	cat >"$1/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/bin:/usr/bin:/bin
CMD ["sh"]
EOF
}

# cachemount_ctx DIR N writes the context of the cachemount case: N C
# files of 30 small functions each, main.c, a Makefile, and a Dockerfile
# compiling them with `make -j2` through ccache in a cache mount.
cachemount_ctx() {
	local c=$1 n=$2 i j
	mkdir -p "$c"
	for i in $(seq 0 $((n - 1))); do
		{
			for j in $(seq 0 29); do
				printf 'int f%d_%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += (i * %d) ^ (s >> 3); return s; }\n' "$i" "$j" "$j"
			done
			printf 'int f%d(int x) { return 0' "$i"
			for j in $(seq 0 29); do printf ' + f%d_%d(x)' "$i" "$j"; done
			printf '; }\n'
		} >"$c/f$i.c"
	done
	{
		for i in $(seq 0 $((n - 1))); do printf 'int f%d(int);\n' "$i"; done
		printf 'int main(void) { int s = 0;\n'
		for i in $(seq 0 $((n - 1))); do printf ' s += f%d(100);\n' "$i"; done
		printf ' return s == 42; }\n'
	} >"$c/main.c"
	printf 'app: $(patsubst %%.c,%%.o,$(wildcard *.c))\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c -o $@ $<\n' >"$c/Makefile"
	cat >"$c/Dockerfile" <<'EOF'
ARG REG
FROM $REG/debian-dev
ENV CCACHE_DIR=/ccache
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/ccache make -j2 CC="ccache gcc" && cp app /usr/local/bin/app
EOF
}

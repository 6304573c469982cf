// Package userns makes builder rootless: an ordinary user's builder
// re-executes itself inside a new user and mount namespace in which it is
// root, with the user's subordinate uid and gid ranges mapped in (through
// the setuid newuidmap and newgidmap helpers), so that everything after it,
// unpacking layers with their owners, overlay mounts and RUN sandboxes, runs
// the same code as a root build.
//
// The handshake between the two processes:
//
//	parent (the user)                 child (re-executed, new userns+mountns)
//	start child, fd 3 = go-ahead pipe  block reading fd 3
//	newuidmap/newgidmap child's pid
//	   (or write a single-id map)
//	close the pipe's write end ───────► read returns EOF: the maps are in
//	wait, forwarding signals           run as uid 0 in the namespace
//	exit with the child's status
package userns

// Package seccomp compiles seccomp profiles (the OCI runtime-spec form that
// Docker's profile resolves to) into classic BPF, in pure Go, and encodes
// the result for the sandbox init (executor/sandboxinit), which loads it.
//
// The sandbox uses Docker's default profile (github.com/moby/profiles/seccomp)
// resolved for Docker's default capabilities. The compiler follows libseccomp's
// semantics where Docker's profile relies on them: rules for one syscall are
// ORed, the conditions of one rule are ANDed, 64-bit argument comparisons on
// 64-bit ABIs and 32-bit ones on 32-bit ABIs, x32 told apart from x86_64 by
// its syscall bit, and a foreign architecture killed. As runc does, a syscall
// number this package does not know gets ENOSYS rather than the default
// action, so that libc falls back from syscalls newer than the tables.
package seccomp

"""The decoder's sandbox. Vosk decodes callers' audio in C++ (Kaldi), and audio can be
crafted; so the process that does it locks itself before it reads any: from then on it may
read its standard input, write its standard output, use memory and exit, and no more. Every
other system call fails with EPERM: it cannot open a file (the database, the recordings, the
keys), create or change one, open a socket, start or touch another process, or undo the lock.

The lock is a seccomp filter that libseccomp (libseccomp2, which systemd needs too) builds
for this machine's architecture; it holds for the process and anything it could start."""

from __future__ import annotations

import ctypes
import errno
import os
import signal

# What decoding needs once the model is loaded (seen with strace on Python 3.11 and Vosk
# 0.3): pipes, memory, signals' bookkeeping, clocks, exit. Nothing that makes a descriptor.
ALLOWED = (
    "read", "readv", "write", "writev", "lseek", "fstat", "newfstatat", "close",
    "brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "getpid", "gettid", "getppid", "getrandom", "clock_gettime", "clock_getres",
    "gettimeofday", "sched_yield", "exit", "exit_group",
)  # fmt: skip
ACT_ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
ACT_ERRNO = 0x00050000  # SCMP_ACT_ERRNO(n): n in the low 16 bits
PR_SET_PDEATHSIG = 1


class SandboxError(RuntimeError):
    """The lock could not be set: the decoder must not go on without it."""


def lock() -> None:
    """Lock this process: its standard streams and memory, nothing else. Every other
    descriptor is closed first (none may stay open to read or write through), and the
    process dies with its parent (the worker)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise SandboxError(f"prctl: {os.strerror(ctypes.get_errno())}")
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    try:
        seccomp = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        raise SandboxError("libseccomp is missing (apt-get install libseccomp2)") from None
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                         ctypes.c_uint]  # fmt: skip
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    seccomp.seccomp_release.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(ACT_ERRNO | errno.EPERM)
    if not context:
        raise SandboxError("libseccomp could not start a filter")
    try:
        for name in ALLOWED:
            number = seccomp.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a system call on this architecture
            if seccomp.seccomp_rule_add(context, ACT_ALLOW, number, 0) < 0:
                raise SandboxError(f"libseccomp refused to allow {name}")
        failed = seccomp.seccomp_load(context)  # sets no_new_privs first
        if failed < 0:
            raise SandboxError(f"the kernel refused the filter: {os.strerror(-failed)}")
    finally:
        seccomp.seccomp_release(context)

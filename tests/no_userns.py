"""Run a command the way Docker's default seccomp profile would: without user namespaces.

    python no_userns.py PROGRAM ARGS...

Docker (and Podman) containers without CAP_SYS_ADMIN get EPERM from unshare()
and setns(), and from clone() with CLONE_NEWUSER, and ENOSYS from clone3 (so
libc falls back to clone). This installs the same rules as a seccomp filter,
which the program and everything it starts inherit, then execs the program.
Only that part of the profile is copied: it is the part embedded Postgres
cares about (runas.py probes for user namespaces).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys

# Syscall numbers by machine (asm/unistd.h).
SYSCALLS = {
    "x86_64": {"unshare": 272, "setns": 308, "clone": 56, "clone3": 435},
    "aarch64": {"unshare": 97, "setns": 268, "clone": 220, "clone3": 435},
}
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
LD_W_ABS, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06
NR_OFFSET, ARG0_OFFSET = 0, 16  # in struct seccomp_data (arg0's low 32 bits: little-endian machines)


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def supported() -> bool:
    return platform.machine() in SYSCALLS and sys.platform == "linux"


def _program(nr: dict[str, int]) -> list[tuple[int, int, int, int]]:
    deny = (RET_K, 0, 0, RET_ERRNO | errno.EPERM)
    return [
        (LD_W_ABS, 0, 0, NR_OFFSET),
        (JEQ_K, 0, 1, nr["unshare"]), deny,
        (JEQ_K, 0, 1, nr["setns"]), deny,
        (JEQ_K, 0, 1, nr["clone3"]), (RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
        (JEQ_K, 0, 3, nr["clone"]),
        (LD_W_ABS, 0, 0, ARG0_OFFSET),
        (JSET_K, 0, 1, CLONE_NEWUSER), deny,
        (RET_K, 0, 0, RET_ALLOW),
    ]


def install_filter() -> None:
    rules = _program(SYSCALLS[platform.machine()])
    filters = (SockFilter * len(rules))(*[SockFilter(*rule) for rule in rules])
    prog = SockFprog(len(rules), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                                                                  ctypes.byref(prog)):
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")


if __name__ == "__main__":
    install_filter()
    os.execvp(sys.argv[1], sys.argv[1:])

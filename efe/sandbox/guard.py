"""Run-time lock-down of a sandbox child, applied after fork and before program code runs.

The AST policy is only a first filter: a program can reach ``os`` or ``subprocess`` through
attribute chains of allowed modules. What actually stops it is here: resource limits, a
privilege drop when started as root (so ``RLIMIT_NPROC`` bites and other users' files are
unreadable), and a CPython audit hook that ends the process on the first forbidden event
(file, socket, process, ctypes, dynamic code), after writing a typed failure to the result
pipe. The hook cannot be removed once added, and ending the process means a program cannot
swallow the error and carry on.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import json
import os
import resource
import signal
import site
import struct
import sys
import sysconfig
from typing import Any, Callable

try:  # loaded in the worker before any fork: it looks libseccomp up with a subprocess
    import pyseccomp
except (ImportError, OSError, RuntimeError):  # no binding or no libseccomp on this system
    pyseccomp = None

PROGRAM_FILENAME = "<efe-program>"
VIOLATION_EXIT = 87

_DENY_PREFIXES = (
    "os.", "subprocess.", "socket.", "shutil.", "ctypes.", "urllib.", "http.", "ftplib.",
    "smtplib.", "telnetlib.", "poplib.", "imaplib.", "nntplib.", "webbrowser.", "pty.",
    "fcntl.", "mmap.", "sqlite3.", "glob.", "tempfile.", "syslog.", "resource.", "signal.",
    "_thread.", "threading.", "marshal.", "pickle.", "gc.", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "setopencodehook", "code.__new__", "function.__new__", "cpython.",
    "builtins.input", "builtins.breakpoint", "winreg.", "msvcrt.", "ssl.", "select.",
    "socketserver.", "asyncio.", "multiprocessing.", "_posixsubprocess.", "sys.unraisablehook",
    "sys.excepthook", "sys.remote_exec",
)
_DENY_IMPORT_ROOTS = frozenset({
    "os", "posix", "subprocess", "_posixsubprocess", "socket", "_socket", "ctypes", "_ctypes",
    "multiprocessing", "shutil", "pickle", "_pickle", "marshal", "importlib", "urllib", "http",
    "ssl", "_ssl", "asyncio", "threading", "_thread", "pty", "signal", "resource", "mmap",
    "sqlite3", "tempfile", "glob", "pathlib", "io", "_io", "builtins", "sys", "gc", "inspect",
    "code", "codeop", "runpy", "pkgutil", "zipimport", "ftplib", "smtplib", "webbrowser",
    "select", "selectors", "fcntl", "socketserver", "xmlrpc", "dbm", "shelve",
})
_DYNAMIC_CODE_CALLERS = ("<frozen importlib._bootstrap", "collections/__init__.py", "dataclasses.py")
_CODE_SUFFIXES = (".py", ".pyc", ".so")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_BLOCKED_BUILTINS = (
    "open", "eval", "exec", "compile", "input", "breakpoint", "globals", "locals", "vars",
    "help", "exit", "quit", "memoryview", "__loader__", "__spec__", "__build_class__",
)


def apply_limits(memory_mb: int, cpu_s: int) -> None:
    """Address space above what is already mapped, CPU seconds, no files written, no cores."""
    current = _mapped_bytes()
    limit = current + int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_s), int(cpu_s) + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_CLONE_NEWNS, _CLONE_NEWNET, _CLONE_NEWUSER = 0x00020000, 0x40000000, 0x10000000


def isolate(empty_root: str, namespaces: bool = True) -> str:
    """New network and mount namespaces, then chroot into an empty directory.

    This is what stops C-level I/O that no audit hook sees (e.g. a C extension opening a
    file or a socket itself): there is no file to open and no network to reach. As root the
    namespaces are created directly; otherwise through an unprivileged user namespace. Where
    the kernel refuses both, ``apply_seccomp`` and the audit hook remain, and the mode says so.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    attempts = [_CLONE_NEWNET | _CLONE_NEWNS, _CLONE_NEWNET] if os.getuid() == 0 else []
    attempts.append(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS)
    if not namespaces:  # forced fallback (tests): behave as where the kernel refuses namespaces
        attempts = []
    for flags in attempts:
        if libc.unshare(flags) == 0:
            try:
                os.chroot(empty_root)
                os.chdir("/")
            except OSError:
                return "network-namespace"
            return "namespaces+chroot"
    return "audit-only"


# Syscalls a program never needs once the child is locked down. Opening files fails as in the
# empty chroot (ENOENT); the rest fail with EPERM.
_SECCOMP_NO_FILES = ("open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at")
_SECCOMP_DENIED = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "mount",
    "umount2", "pivot_root", "chroot", "setns", "unshare", "link", "linkat", "symlink", "symlinkat",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "truncate",
    "chmod", "fchmodat", "chown", "fchownat", "lchown", "mknod", "mknodat", "bpf", "perf_event_open",
    "io_uring_setup", "kexec_load", "init_module", "finit_module", "keyctl", "add_key", "request_key",
)


def apply_seccomp(enabled: bool = True) -> bool:
    """A kernel syscall filter that holds where namespaces are refused (Docker's default profile).

    No file can be opened and no socket made, whoever asks: a C extension calling ``open()``
    directly is stopped here, which the audit hook cannot see. Returns False when the system has
    no libseccomp binding or the kernel refuses the filter (the mode then says so).
    """
    if pyseccomp is None or not enabled:
        return False
    try:
        (_PREPARED.get("filter") or _seccomp_filter()).load()
    except OSError:
        return False
    return True


_PREPARED: dict[str, Any] = {}


def prepare_seccomp() -> None:
    """Build the filter once in the worker, before any fork: each child then only loads its copy."""
    if pyseccomp is not None:
        try:
            _PREPARED["filter"] = _seccomp_filter()
        except OSError:
            pass


def _seccomp_filter() -> Any:
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in _SECCOMP_NO_FILES:
        _seccomp_rule(f, pyseccomp.ERRNO(errno.ENOENT), name)
    for name in _SECCOMP_DENIED:
        _seccomp_rule(f, pyseccomp.ERRNO(errno.EPERM), name)
    return f


def _seccomp_rule(f: Any, action: int, name: str) -> None:
    try:
        f.add_rule(action, name)
    except (OSError, ValueError):  # a syscall this architecture does not have
        pass


def drop_privileges() -> None:
    """As root, become ``nobody``; then forbid new processes (NPROC is ignored for root)."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def die_with_parent() -> None:
    """Ask the kernel to kill this child if the worker dies (cleared by setuid, so call after)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# The child's result pipe: one STEP_DONE byte each time a step of the plan completes (the worker's
# wall-clock deadline starts again), then RESULT and the framed result (8-byte length, body).
STEP_DONE = b"\x01"
RESULT = b"\x00"


def install_audit_hook(result_fd: int, program_code: Any, code_roots: tuple[str, ...]) -> None:
    """End the process on the first forbidden event, reporting it on ``result_fd``."""
    write = os.write
    exit_now = os._exit
    getframe = sys._getframe
    pack = struct.pack
    dumps = json.dumps

    def deny(event: str, detail: str) -> None:
        body = dumps({
            "status": "violation",
            "event": event,
            "message": f"forbidden at run time: {detail}",
            "line": _program_line(getframe),
        }).encode()
        try:
            write(result_fd, RESULT + pack("<Q", len(body)) + body)
        finally:
            exit_now(VIOLATION_EXIT)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if _is_code_read(path, mode, flags, code_roots):
                return
            deny(event, f"open({path!r}) (no file access)")
        elif event == "import":
            root = str(args[0]).split(".")[0]
            if root in _DENY_IMPORT_ROOTS:
                deny(event, f"import of {args[0]!r}")
        elif event in ("compile", "exec"):
            if event == "exec" and args and args[0] is program_code:
                return
            caller = getframe(1).f_code.co_filename
            if not any(marker in caller for marker in _DYNAMIC_CODE_CALLERS):
                deny(event, f"{event}() of dynamic code")
        elif event.startswith(_DENY_PREFIXES):
            deny(event, f"{event}{_short(args)}")

    sys.addaudithook(hook)


def restricted_builtins(allowed_import: Callable[[str, tuple], bool]) -> dict:
    """Builtins for the program namespace: no I/O, no dynamic code, guarded import/getattr."""
    real_import = builtins.__import__
    real_getattr, real_setattr = builtins.getattr, builtins.setattr
    real_delattr, real_hasattr = builtins.delattr, builtins.hasattr

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or not allowed_import(name, tuple(fromlist or ())):
            raise ImportError(f"import of {name!r} is not allowed in feature programs")
        return real_import(name, globals, locals, fromlist, level)

    def check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("__"):
            raise AttributeError(f"access to dunder attribute {name!r} is not allowed")

    def safe_getattr(obj, name, *default):
        check(name)
        return real_getattr(obj, name, *default)

    def safe_setattr(obj, name, value):
        check(name)
        return real_setattr(obj, name, value)

    def safe_delattr(obj, name):
        check(name)
        return real_delattr(obj, name)

    def safe_hasattr(obj, name):
        check(name)
        return real_hasattr(obj, name)

    table = {k: v for k, v in vars(builtins).items() if k not in _BLOCKED_BUILTINS}
    table.update(
        __import__=guarded_import,
        getattr=safe_getattr,
        setattr=safe_setattr,
        delattr=safe_delattr,
        hasattr=safe_hasattr,
        __build_class__=builtins.__build_class__,
    )
    return table


def _is_code_read(path: Any, mode: Any, flags: Any, roots: tuple[str, ...]) -> bool:
    if not isinstance(path, str) or not path.endswith(_CODE_SUFFIXES):
        return False
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return False
    if isinstance(flags, int) and flags & _WRITE_FLAGS:
        return False
    real = os.path.realpath(path)
    return any(real.startswith(root) for root in roots)


def _program_line(getframe: Callable) -> int | None:
    frame = getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _short(args: tuple) -> str:
    text = repr(tuple(args))
    return text if len(text) <= 160 else text[:157] + "..."


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def code_roots() -> tuple[str, ...]:
    """Directories whose code files lazy imports may read (the interpreter's own install)."""
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"]}
    roots.update(site.getsitepackages())
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))

"""``njit`` for RecWorld's compiled kernels, with an on-disk cache that cannot go stale.

Numba's own cache is keyed by each function's source file, so a kernel that
calls a kernel of another module (the envs' glue calls the user model) keeps
running the old callee after the callee's file changes. Every RecWorld kernel
is therefore cached in a folder keyed by a hash of the source of every module
that compiles kernels (those importing this module): a change to any of them
compiles all afresh, while a change elsewhere (a dashboard page, a CLI
message) keeps the compiled code, which takes about a minute to rebuild on two
cores. Kernels call only kernels of such modules (a test checks it). Set
``NUMBA_CACHE_DIR`` to take over the cache location yourself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numba
from numba import njit

_KEEP = 8  # cache folders of other source versions kept (the newest), so switching branches stays cheap
_STALE_S = 24 * 3600  # and none is removed within a day of its last use (other checkouts may be using it)


# Modules without kernels whose classes compiled code builds: the env kernels
# rebuild a UserState from a plain tuple of its arrays, so its field order is
# compiled in.
_BUILT_BY_KERNELS = ("state.py",)


def kernel_modules(root: Path) -> list[Path]:
    """The package's source files that compile kernels (they import this module) or whose classes kernels build, and this module."""
    out = []
    for dirpath, dirnames, filenames in sorted(os.walk(root, followlinks=True)):
        dirnames.sort()
        for name in sorted(f for f in filenames if f.endswith(".py")):
            p = Path(dirpath) / name
            src = p.read_bytes()
            built = Path(dirpath).resolve() == root.resolve() and name in _BUILT_BY_KERNELS
            if b"recworld.jit import" in src or built or p.resolve() == Path(__file__).resolve():
                out.append(p)
    return out


def _source_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in kernel_modules(root):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _configure() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("RECWORLD_CACHE_DIR", Path.home() / ".cache" / "recworld")) / "numba"
    key = f"py{sys.version_info.major}{sys.version_info.minor}-numba{numba.__version__}-{_source_hash(Path(__file__).resolve().parent)}"
    target = base / key
    try:
        target.mkdir(parents=True, exist_ok=True)
        os.utime(target)
        others = sorted((p for p in base.iterdir() if p.is_dir() and p != target), key=lambda p: p.stat().st_mtime, reverse=True)
        now = target.stat().st_mtime
        for old in others[_KEEP:]:
            if now - old.stat().st_mtime > _STALE_S:
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        return  # a read-only home: numba falls back to its own locations
    numba.config.CACHE_DIR = str(target)


_configure()

__all__ = ["njit"]

"""The compiled kernels' cache key covers every module whose code ends up compiled."""

import ast
import os
from pathlib import Path

import recworld
from recworld.jit import kernel_modules

ROOT = Path(recworld.__file__).resolve().parent
# The source tree as the package sees it (agents/, envs/, ... are linked under recworld/).
FILES = [Path(d) / f for d, _, fs in os.walk(ROOT, followlinks=True) for f in fs if f.endswith(".py")]
MODULES = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts) for p in FILES}


def _recworld_imports(path: Path) -> set[str]:
    """Module-level imports only: a kernel can read only module globals."""
    tree = ast.parse(path.read_text())
    out = set()
    for n in tree.body:
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("recworld"):
            # `from recworld.usermodel import kernels` imports the module recworld.usermodel.kernels
            out |= {f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in MODULES else n.module for a in n.names}
    return out


def test_every_compiled_function_is_under_the_cache_key():
    kernels = {p.resolve() for p in kernel_modules(ROOT)}
    assert len(FILES) > 100
    for p in FILES:
        src = p.read_text()
        if "@njit" in src or "import numba" in src or "from numba" in src:
            assert p.resolve() in kernels or p.name == "jit.py", f"{p} compiles code without recworld.jit: its changes would not refresh the cache"


def test_kernels_import_only_kernels_or_plain_python():
    """A kernel module's recworld imports are kernel modules (hashed) or hold no compiled code or constants kernels read."""
    kernels = kernel_modules(ROOT)
    by_module = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts): p for p in kernels}
    plain = {"recworld.jit", "recworld.protocols"}  # njit itself; typing Protocols used in signatures only
    for p in kernels:
        for mod in _recworld_imports(p):
            resolved = mod if mod in by_module else None
            assert resolved or mod in plain, f"{p.name} imports {mod}, which is not under the kernel cache key"

"""What the core install weighs: build a fresh venv with RecWorld and no extras, print its size per package.

    python benchmarks/bench_core_install.py [--venv /tmp/recworld-core] [--top 20]

The recipe (:func:`build_core_venv`) is the README's core install and the one
``tests/test_core_install.py`` checks: ``python -m venv``, ``pip install
torch==2.13.0`` (the CPU wheel; an unpinned torch pulls a multi-GB CUDA build),
``pip install -e .`` without extras, ``pip install --no-deps recbole==1.2.1``
(the MovieLens-100K data).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_core_venv(venv: Path, repo: Path = REPO) -> float:
    """Create ``venv`` with the core install of ``repo``; returns the seconds it took."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "-e", str(repo)], check=True)
    subprocess.run([*pip, "--no-deps", "recbole==1.2.1"], check=True)
    return time.perf_counter() - t0


def dir_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=Path("/tmp/recworld-core"))
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    if args.venv.exists():
        shutil.rmtree(args.venv)
    seconds = build_core_venv(args.venv)
    site = next((args.venv / "lib").glob("python3*/site-packages"))
    sizes = sorted(
        ((dir_size(p) if p.is_dir() else p.stat().st_size, p.name) for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth"))), reverse=True
    )
    total = dir_size(args.venv)
    print(f"core venv: {total / 2**20:,.0f} MiB in {args.venv} (built in {seconds:.0f} s)\n")
    print("| package (import dir) | MiB |\n|---|---:|")
    for size, name in sizes[: args.top]:
        print(f"| {name} | {size / 2**20:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

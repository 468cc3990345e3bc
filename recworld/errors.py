"""The RecWorld error hierarchy: errors a user can fix, each with a one-line message."""

from __future__ import annotations

import importlib
from types import ModuleType


class RecWorldError(Exception):
    """Base class for misuse errors; the CLI prints ``str(err)`` and exits non-zero."""


class ConfigError(RecWorldError):
    """A scenario, CLI argument or setting is invalid (names the field and the fix)."""


class DataError(RecWorldError):
    """A data file is missing or malformed (names the file and the field)."""


class LLMError(RecWorldError):
    """An LLM backend could not be set up or reached."""


class MissingExtraError(ConfigError):
    """An optional part of RecWorld was used without its extra installed (the message names the extra)."""


#: The optional extras of the ``recworld`` distribution (pyproject.toml) and what each adds.
EXTRAS: dict[str, str] = {
    "llm": "LLM users: the OpenAI client, the embedded llama.cpp server (xllamacpp) and the Gemma 3 270M model",
    "llm-remote": "LLM users against your own OpenAI-compatible server: the OpenAI client only",
    "rl": "RL training and multi-agent envs: Stable-Baselines3, PettingZoo",
    "dashboard": "the web dashboard: FastAPI, uvicorn, Jinja2, plotly",
    "postgres": "PostgreSQL storage: psycopg",
    "ray": "sweeps as Ray tasks and RLlib training: ray[default,rllib]",
}


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or fail with one line naming the extra to install.

    Args:
        module: the module to import (e.g. ``"fastapi"``).
        extra: the extra that provides it (a key of :data:`EXTRAS`).
        feature: what needs it, for the message (e.g. ``"the dashboard"``).

    Raises:
        MissingExtraError: ``module`` (or one of its own dependencies) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtraError(f"{feature} needs the '{extra}' extra ({missing} is not installed): pip install 'recworld[{extra}]'") from None

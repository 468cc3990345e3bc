"""Errors a user can fix: a missing extra is named in one line."""

from __future__ import annotations

import sys

import pytest

from recworld.errors import EXTRAS, ConfigError, MissingExtraError, RecWorldError, require_extra


def test_require_extra_names_the_extra(monkeypatch):
    import json

    assert require_extra("json", "llm", "x") is json
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    with pytest.raises(MissingExtraError) as err:
        require_extra("fastapi", "dashboard", "the dashboard")
    assert str(err.value) == "the dashboard needs the 'dashboard' extra (fastapi is not installed): pip install 'recworld[dashboard]'"
    assert isinstance(err.value, ConfigError) and isinstance(err.value, RecWorldError)


def test_every_named_extra_exists_in_pyproject():
    import tomllib
    from pathlib import Path

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)

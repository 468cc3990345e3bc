"""The platform's catalog search: embedding retrieval plus title match, ranked.

One implementation, used by users' searches (the search layer) and by
conversational agents as a tool. A query is scored against every item as

    score = cosine(query vector, item embedding) + title_weight * title match

- the **query vector** lives in the catalog's embedding space. The default
  encoder (``catalog``) builds it from the catalog's existing text
  embeddings: each word of the vocabulary (title words, tags, decades) is the
  normalised mean embedding of the items it describes, and a query is the
  IDF-weighted sum of its known words. No model is loaded, so search costs a
  few microseconds per query and runs anywhere the catalog does. ``minilm``
  embeds the query text with the catalog's own text encoder (all-MiniLM-L6-v2,
  projected with :meth:`~recworld.catalog.Catalog.project`): slower, better on
  free-form text.
- the **title match** is the IDF-weighted share of the query's words found in
  the item's title (1 when all are), plus ``exact_bonus`` when the query is
  the whole title.

The index follows the catalog as it grows (posts become items).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog

_WORD = re.compile(r"[a-z0-9]+")
_YEAR = re.compile(r"\((\d{4})\)\s*$")
# Words that carry no meaning in a title or a query.
STOPWORDS = frozenset(
    "a an and the of in on to for with from at by is it its be as or movie movies film films something some like about want watch "
    "i me my im looking show find any good please s".split()
)

QueryEncoder = Callable[[Sequence[str]], np.ndarray]


def words(text: str) -> list[str]:
    """Lower-case content words of ``text`` (stop words dropped)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def title_words(title: str) -> list[str]:
    """Content words of a title, without its trailing ``(year)``."""
    return words(_YEAR.sub("", title))


def decade_word(year: int) -> str:
    """The word a query uses for ``year``'s decade (``"1990s"``)."""
    return f"{(year // 10) * 10}s"


@dataclass(frozen=True)
class SearchResult:
    """Ranked results of one query.

    Attributes:
        items: (k,) item ids, best first.
        scores: (k,) their scores.
        title_hits: (k,) bool, the item's title matched at least one query word.
    """

    items: np.ndarray
    scores: np.ndarray
    title_hits: np.ndarray


class CatalogSearch:
    """Search over a catalog (see the module docstring).

    Args:
        catalog: the items (titles, tags, years, embeddings).
        title_weight: weight of the title match against the cosine.
        exact_bonus: extra score when the query is the item's whole title.
        encoder: ``"catalog"`` (word vectors from the catalog's embeddings) or
            ``"minilm"`` (the text encoder); or any callable texts -> vectors
            in the catalog's space.
    """

    def __init__(
        self, catalog: Catalog, title_weight: float = 1.0, exact_bonus: float = 0.5, encoder: Literal["catalog", "minilm"] | QueryEncoder = "catalog"
    ) -> None:
        self.catalog = catalog
        self.title_weight = float(title_weight)
        self.exact_bonus = float(exact_bonus)
        self.encoder = encoder
        self._n = -1
        self._scored_cache: dict[str, list] = {}
        self._index()

    # ------------------------------------------------------------ the index
    def _index(self) -> None:
        cat = self.catalog
        n = len(cat)
        vocab: dict[str, int] = {}
        t_rows: list[int] = []  # title word occurrences (word, item)
        t_cols: list[int] = []
        d_rows: list[int] = []  # describing words: title words, tags, decades
        d_cols: list[int] = []
        self._titles = []
        for i in range(n):
            tw = sorted(set(title_words(cat.titles[i])))
            self._titles.append(" ".join(title_words(cat.titles[i])))
            desc = set(tw)
            for tag in cat.tags[i]:
                desc.update(words(tag))
            y = int(cat.years[i])
            if y > 0:
                desc.add(decade_word(y))
            for w in tw:
                t_rows.append(vocab.setdefault(w, len(vocab)))
                t_cols.append(i)
            for w in sorted(desc):
                d_rows.append(vocab.setdefault(w, len(vocab)))
                d_cols.append(i)
        v = len(vocab)
        self.vocab = vocab
        d_rows_a = np.asarray(d_rows, np.int64)
        d_cols_a = np.asarray(d_cols, np.int64)
        df = np.bincount(d_rows_a, minlength=v).astype(np.float64)
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        emb = cat.embeddings[:n].astype(np.float64)
        vec = np.zeros((v, emb.shape[1]))
        np.add.at(vec, d_rows_a, emb[d_cols_a])
        self.word_vectors = (vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-8)).astype(np.float32)
        # Title postings: word -> items whose title holds it; per item, the IDF mass of its title.
        order = np.argsort(np.asarray(t_rows, np.int64), kind="stable")
        tr = np.asarray(t_rows, np.int64)[order]
        self._post_items = np.asarray(t_cols, np.int64)[order]
        self._post_start = np.searchsorted(tr, np.arange(v + 1))
        self._emb = cat.embeddings[:n]
        self._n = n
        self._exact = {t: i for i, t in reversed(list(enumerate(self._titles))) if t}
        self._scored_cache = {}

    def __getstate__(self) -> dict[str, object]:
        # The score cache is rebuilt on demand; checkpoints need not carry it.
        state = self.__dict__.copy()
        state["_scored_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("_scored_cache", {})  # checkpoints written before the cache
        self.__dict__.update(state)

    def _fresh(self) -> None:
        if len(self.catalog) != self._n:
            self._index()

    # ------------------------------------------------------------- queries
    def encode(self, queries: Sequence[str]) -> np.ndarray:
        """(len(queries), d) unit query vectors in the catalog's embedding space (zero when no word is known)."""
        self._fresh()
        if callable(self.encoder):
            return np.asarray(self.encoder(queries), np.float32)
        if self.encoder == "minilm":
            from recworld.embeddings import default_encoder

            return self.catalog.project(default_encoder().embed(list(queries)))
        out = np.zeros((len(queries), self.word_vectors.shape[1]), np.float32)
        for r, q in enumerate(queries):
            ids = [self.vocab[w] for w in words(q) if w in self.vocab]
            if ids:
                v = (self.idf[ids, None] * self.word_vectors[ids]).sum(axis=0)
                out[r] = v / max(float(np.linalg.norm(v)), 1e-8)
        return out

    def title_match(self, query: str) -> np.ndarray:
        """(n,) IDF-weighted share of the query's words in each title, plus the exact-title bonus."""
        self._fresh()
        score = np.zeros(self._n)
        qw = list(dict.fromkeys(words(query)))
        if not qw:
            return score
        total = 0.0
        for w in qw:
            j = self.vocab.get(w)
            weight = float(self.idf[j]) if j is not None else float(np.log(1.0 + self._n) + 1.0)
            total += weight
            if j is not None:
                score[self._post_items[self._post_start[j] : self._post_start[j + 1]]] += weight
        score /= total
        exact = self._exact.get(" ".join(qw))
        if exact is not None:
            score[exact] += self.exact_bonus
        return score

    def scores(self, query: str, vector: np.ndarray | None = None) -> np.ndarray:
        """(n,) the ranking score of every item for ``query`` (``vector``: its encoding, if known)."""
        self._fresh()
        v = self.encode([query])[0] if vector is None else vector
        return self._emb @ v + self.title_weight * self.title_match(query)

    #: Queries whose scores are kept (users and agents repeat the same few queries: genres, decades).
    CACHE = 256

    def _scored(self, query: str) -> list:
        """``[scores, title hits, ranking or None]`` of ``query`` over the catalog, kept per query and catalog size."""
        self._fresh()
        hit = self._scored_cache.get(query)
        if hit is None:
            tm = self.title_match(query)
            if len(self._scored_cache) >= self.CACHE:
                self._scored_cache.clear()
            hit = self._scored_cache[query] = [self._emb @ self.encode([query])[0] + self.title_weight * tm, tm > 0, None]
        return hit

    def _top_untied(self, hit: list, k: int, exclude: np.ndarray | None) -> np.ndarray | None:
        """The ``k`` best items not in ``exclude`` from the query's full ranking (score, then item id), or ``None`` when a tie
        straddles the cut (then :meth:`search` selects as it always has, and results never depend on this shortcut)."""
        s = hit[0]
        if hit[2] is None:
            hit[2] = np.argsort(-s, kind="stable").astype(np.int64)  # ties by item id
        order = hit[2]
        n_out = 0
        if exclude is not None and exclude.size:
            ex = exclude.astype(np.int64)
            exl = ex.tolist()  # a few items (offered so far): Python's min, max and set beat numpy's on these
            if min(exl) < 0 or max(exl) >= self._n:
                return None
            keep = np.ones(self._n, bool)  # a mask: the head can be the whole catalog (agents' candidate pools)
            keep[ex] = False
            n_out = len(set(exl))
            head = order[: k + n_out + 1]
            head = head[keep[head]]  # a new array
        else:
            head = order[: k + 1]
        k = min(k, self._n - n_out)
        if k < self._n - n_out and not s[head[k - 1]] > s[head[k]]:
            return None
        return head[:k] if n_out else head[:k].copy()  # never a view of the kept ranking

    def search(self, query: str, k: int, exclude: np.ndarray | None = None, within: np.ndarray | None = None) -> SearchResult:
        """The ``k`` best items for ``query``.

        Args:
            query: the query text.
            k: results wanted (fewer when fewer items qualify).
            exclude: (n,) bool or item ids to leave out (e.g. items already offered).
            within: item ids to rank among (a tool restricting search to candidates).
        """
        items = self.ranking(query, k, exclude, within)
        hit = self._scored(query)
        return SearchResult(items, hit[0][items], hit[1][items])

    def ranking(self, query: str, k: int, exclude: np.ndarray | None = None, within: np.ndarray | None = None) -> np.ndarray:
        """The items of :meth:`search`, without their scores (conversational agents rank the whole catalog every turn)."""
        hit = self._scored(query)
        s = hit[0]
        if within is None and int(k) > 0:
            ex = None if exclude is None else np.asarray(exclude)
            if ex is None or ex.dtype != bool:
                items = self._top_untied(hit, int(k), ex)
                if items is not None:
                    return items
        allowed = np.ones(self._n, bool)
        if within is not None:
            allowed[:] = False
            allowed[np.asarray(within, np.int64)] = True
        if exclude is not None:
            ex = np.asarray(exclude)
            if ex.dtype == bool:
                allowed &= ~ex[: self._n]
            else:
                allowed[ex.astype(np.int64)] = False
        cand = np.flatnonzero(allowed)
        k = min(int(k), cand.size)
        if k <= 0:
            return np.zeros(0, np.int64)
        sc = s[cand]
        top = np.argpartition(-sc, k - 1)[:k] if k < cand.size else np.arange(cand.size)
        # Best first; ties by item id so results are deterministic.
        top = top[np.lexsort((cand[top], -sc[top]))]
        return cand[top]


__all__ = ["STOPWORDS", "CatalogSearch", "QueryEncoder", "SearchResult", "decade_word", "title_words", "words"]

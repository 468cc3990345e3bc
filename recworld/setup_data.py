"""One-time set-up of offline data: check ML-100K, warm the embedding cache, assemble the embedded LLM.

Run by ``make demo`` / ``make test`` after installing; idempotent and offline.
"""

from __future__ import annotations

import sys

from recworld.errors import MissingExtraError, RecWorldError


def main() -> int:
    try:
        from recworld.usermodel.bundled import bundled_catalog, bundled_model

        _, ml = bundled_catalog(progress=True)
        print(f"data ready: MovieLens-100K ({len(ml.items)} items, {len(ml.users)} users, {ml.n_ratings} ratings), embeddings cached")
        model = bundled_model(progress=lambda msg: print(f"  fitting the user model: {msg}", flush=True))
        print(f"user model ready: fitted to ML-100K ({model.report.get('fit_seconds', 0)} s when fitted; cached)")
        try:
            from recworld.llm.embedded import ensure_model

            path = ensure_model()
            print(f"embedded LLM ready: {path}")
        except MissingExtraError:
            print("embedded LLM: skipped (the 'llm' extra is not installed)")
    except RecWorldError as exc:
        print(f"setup: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""RecWorld kernel: types, events, the World (a mesa.Model), catalog, storage, metrics, LLM runtime.

The kernel imports none of the other RecWorld packages; users, brains and
recommenders are injected through the Protocols in :mod:`recworld.protocols`.
"""

from recworld.errors import ConfigError, DataError, RecWorldError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "RecWorldError", "__version__"]


def _register_envs() -> None:
    # Registry, not imports: env ids are registered with string entry points so
    # `import recworld` makes `gym.make("RecWorld/Feed-v0")` work without the
    # kernel importing the `envs` package.
    try:
        from gymnasium.envs.registration import registry
    except ImportError:  # pragma: no cover - gymnasium is a core dependency
        return
    if "RecWorld/Feed-v0" in registry:
        return
    try:
        import importlib

        importlib.import_module("envs.registration").register_all()
    except ModuleNotFoundError:
        pass


_register_envs()

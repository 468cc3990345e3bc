"""The RecWorld error hierarchy: errors a user can fix, each with a one-line message."""


class RecWorldError(Exception):
    """Base class for misuse errors; the CLI prints ``str(err)`` and exits non-zero."""


class ConfigError(RecWorldError):
    """A scenario, CLI argument or setting is invalid (names the field and the fix)."""


class DataError(RecWorldError):
    """A data file is missing or malformed (names the file and the field)."""


class LLMError(RecWorldError):
    """An LLM backend could not be set up or reached."""

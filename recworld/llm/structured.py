"""Structured output helpers: schemas for the server, JSON extraction and validation."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError


@lru_cache(maxsize=256)
def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a pydantic model, as sent to the server (shared: do not mutate it).

    Objects get ``additionalProperties: false`` unless they say otherwise:
    with open objects, a grammar-constrained small model keeps inventing keys
    until it hits ``max_tokens`` (measured with Gemma 270M). Pydantic ignores
    extra keys anyway, so validation is unchanged.

    Cached per model class: pydantic builds the schema anew on every call,
    and at a few hundred calls per second that was a fifth of the runtime's
    CPU (measured with py-spy on ``benchmarks/bench_llm_pool.py``).
    """
    return _close_objects(model.model_json_schema())


def _close_objects(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _close_objects(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_close_objects(v) for v in node]
    return node


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI ``response_format`` asking for JSON that matches ``model``.

    llama.cpp's server and OpenAI both accept this shape.
    """
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": schema_of(model), "strict": False},
    }


def extract_json_object(text: str) -> str | None:
    """The first balanced ``{...}`` object in ``text``, or None.

    Servers and models often wrap JSON in prose or code fences; a scan that
    tracks strings and escapes finds the object without a regex's pitfalls.
    """
    start = text.find("{")
    while start != -1:
        depth = 0
        in_str = False
        escaped = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    candidate = text[start : i + 1]
                    try:
                        json.loads(candidate)
                    except ValueError:
                        break  # balanced but not JSON: try the next "{"
                    return candidate
        start = text.find("{", start + 1)
    return None


def validate(model: type[BaseModel], text: str) -> tuple[BaseModel | None, str, str]:
    """Validate ``text`` against ``model``.

    Returns:
        ``(instance, json_text, "")`` on success, ``(None, text, error)`` otherwise,
        where ``error`` is a short message fit to show the model in a repair prompt.
    """
    candidate = extract_json_object(text)
    if candidate is None:
        return None, text, "no JSON object found in the answer"
    try:
        return model.model_validate_json(candidate), candidate, ""
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()[:5])
        return None, candidate, problems


def repair_messages(messages: list[dict[str, Any]], bad_answer: str, error: str, model: type[BaseModel]) -> list[dict[str, Any]]:
    """Messages that re-ask for a valid answer, naming what was wrong."""
    return [
        *messages,
        {"role": "assistant", "content": bad_answer},
        {
            "role": "user",
            "content": (f"That answer was invalid ({error}). Reply with only one JSON object matching this schema: {json.dumps(schema_of(model))}"),
        },
    ]


def render_prompt(messages: list[dict[str, Any]]) -> str:
    """Render chat messages as one plain-text prompt for a base (non-chat) model.

    Contents are joined by blank lines without role tags: a base model
    continues prose better than it follows a template it was never tuned on.
    """
    parts = [str(m.get("content") or "").strip() for m in messages]
    return "\n\n".join(p for p in parts if p) + "\n"

"""Outside JSON, read with bounds: nesting deeper than any real request is refused, not recursed."""

import json
from typing import Any

# Deeper than any request or Stripe event we accept (Stripe's own objects nest about 8 deep).
MAX_JSON_DEPTH = 32


class JsonInputError(ValueError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed value, without recursion (a scalar is 0, ``[]`` is 1)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def contains_nul(value: Any) -> bool:
    """PostgreSQL stores no NUL character in text or jsonb, in keys or in values."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_loads_bounded(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON or raise ``JsonInputError`` (malformed, too deep, or carrying a NUL)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonInputError("too_deeply_nested", f"JSON nested deeper than {max_depth} levels.") from None
    except ValueError as exc:
        raise JsonInputError("parse_error", f"Malformed JSON: {exc}") from None
    if json_depth(value) > max_depth:
        raise JsonInputError("too_deeply_nested", f"JSON nested deeper than {max_depth} levels.")
    if contains_nul(value):
        raise JsonInputError("nul_character", "JSON strings may not contain the NUL character.")
    return value

"""A small validation library for preset overrides: rules that say what is wrong with a value.

A rule takes a value and returns what is wrong with it ("must be ...") or None; a dict rule's
problem names the key path and the value itself (".learning_rate must be ..., got 0").
``suggest`` adds " (did you mean X?)" to a message about an unknown name.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable

Rule = Callable[[Any], "str | None"]


def suggest(name: str, choices) -> str:
    """' (did you mean X?)' for names starting with ``name`` or close to it among ``choices``, else ''."""
    choices = [str(c) for c in choices]
    starting = [c for c in choices if c.startswith(str(name))]
    close = list(dict.fromkeys(starting + difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)))[:3]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(low: int, high: int | None = None, none: bool = False) -> Rule:
    span = f"from {low} to {high}" if high is not None else f">= {low}"
    wanted = f"an integer {span}" + (" or None" if none else "")

    def rule(value):
        if value is None and none:
            return None
        if not _is_int(value) or value < low or (high is not None and value > high):
            return f"must be {wanted}"
        return None

    return rule


def number(low: float = 0.0, high: float | None = None, low_open: bool = True, high_open: bool = False) -> Rule:
    if high is None:
        wanted = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def rule(value):
        ok = _is_number(value) and (value > low if low_open else value >= low)
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        return None if ok else f"must be {wanted}"

    return rule


def choice(*options) -> Rule:
    def rule(value):
        return None if value in options else f"must be one of {', '.join(map(repr, options))}"

    return rule


def text() -> Rule:
    return lambda value: None if isinstance(value, str) and value else "must be a non-empty string"


def flag() -> Rule:
    return lambda value: None if isinstance(value, bool) else "must be True or False"


def anything() -> Rule:
    return lambda value: None


def mapping(keys: dict[str, Rule] | None = None, required: tuple[str, ...] = (), none: bool = False) -> Rule:
    """A dict whose keys are among ``keys`` (any keys when None), each value passing its rule; with ``none``
    also None (a field that is off when unset)."""

    def rule(value):
        if value is None and none:
            return None
        if not isinstance(value, dict):
            return "must be a dict"
        for key in required:
            if key not in value:
                return f".{key} is required"
        for key, inner in value.items():
            if keys is None:
                continue
            if key not in keys:
                return f".{key}: no such key{suggest(key, keys)}; the keys are {', '.join(keys)}"
            problem = keys[key](inner)
            if problem:
                return f".{key}{problem}" if problem.startswith(".") else f".{key} {problem}, got {inner!r}"
        return None

    return rule


def sequence_of(allowed: tuple[str, ...], nested: bool = False) -> Rule:
    """A list/tuple of names from ``allowed`` (of such lists when ``nested``)."""

    def names(value) -> bool:
        return isinstance(value, (list, tuple)) and all(v in allowed for v in value)

    def rule(value):
        ok = isinstance(value, (list, tuple)) and (all(names(v) and v for v in value) if nested else names(value))
        return None if ok else f"must be a {'list of lists' if nested else 'list'} of {', '.join(allowed)}"

    return rule


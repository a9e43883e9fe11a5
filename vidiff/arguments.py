"""Argument checks every layer shares (plain Python): one wording for one kind of mistake.

:func:`check_int` is the positive-integer check (``image_size: expected a positive integer, got -8``) that the
constructors and generation calls of vidiff use for counts and sizes.
"""

from __future__ import annotations

from typing import Any


def check_int(name: str, value: Any, minimum: int = 1, *, note: str = "") -> int:
    """``value`` when it is an ``int`` (not a ``bool``) of at least ``minimum``.

    Args:
        name: the argument, named at the start of the message.
        value: what was passed.
        minimum: the least valid value.
        note: said after the expectation, e.g. ``" (1 = off)"``.

    Raises:
        ValueError: ``{name}: expected a positive integer, got -8`` (``minimum`` 1) or
            ``{name}: expected an integer >= {minimum}, got ...``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {expected}{note}, got {value!r}")
    return value

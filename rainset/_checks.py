"""Argument checks shared by the library's option classes (non-finite floats and the like)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rainset.errors import ParameterError


def require_finite(param: str, value: object) -> None:
    """Raise :class:`ParameterError` when ``value`` (a number, or None) is ``nan`` or ``inf``.

    ``param`` is the library parameter name the message is about. ``None`` passes (an unset
    option); a value that is not a number at all is refused too.
    """
    if value is None:
        return
    try:
        ok = math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(param, f"must be a number, got {value!r}") from None
    if not ok:
        raise ParameterError(param, f"must be a finite number, got {value!r}")


def require_finite_all(param: str, values: Iterable[object]) -> None:
    """:func:`require_finite` for every entry of a sequence option (``radii``, ``length``)."""
    try:
        items = list(values)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(param, f"must be a sequence of numbers, got {values!r}") from None
    for v in items:
        require_finite(param, v)

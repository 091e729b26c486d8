"""Say in one short line how two recorded option sets differ (for "different dataset" errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _short(value: Any, width: int = 40) -> str:
    if value is _MISSING:
        return "absent"
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def differences(
    old: Any,
    new: Any,
    *,
    limit: int = 4,
    there: str = "there",
    now: str = "now",
    name: Callable[[str], str] = str,
) -> str:
    """The keys whose values differ, nested keys dotted: ``params.max_frames: 300 there, 30 now``.

    At most ``limit`` keys are shown (then ``and N more``); long values are shortened; ``name``
    renders a dotted key (e.g. as a parameter name).
    """
    a = _flat(old) if isinstance(old, dict) else {"": old}
    b = _flat(new) if isinstance(new, dict) else {"": new}
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, _MISSING) != b.get(k, _MISSING)]
    parts = [
        f"{name(k) if k else 'value'}: {_short(a.get(k, _MISSING))} {there}, {_short(b.get(k, _MISSING))} {now}"
        for k in keys[:limit]
    ]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return "; ".join(parts) or "no difference"

"""Checks shared by every config group: each failure names the key, the value and what is valid.

Choice lists live beside the code that implements them (ESTIMATORS in objective/estimators.py,
NEGATIVES in objective/negatives.py, ...); the config groups pass them here, so a list is
written once."""

from __future__ import annotations

from collections.abc import Collection

from infomax.errors import InfomaxError


def one_of(key: str, value, choices: Collection) -> None:
    """Raise unless value is one of choices: "objective.critic = 'mlp' is not one of: concat, dot"."""
    if value not in choices:
        raise InfomaxError(f"{key} = {value!r} is not one of: {', '.join(map(str, choices))}")


def at_least(key: str, value, low, *, strict: bool = False, why: str = "") -> None:
    """Raise unless value >= low (value > low with strict)."""
    ok = value > low if strict else value >= low
    if not ok:
        sign = ">" if strict else "≥"
        raise InfomaxError(f"{key} = {value!r} must be {sign} {low}" + (f" ({why})" if why else ""))


def require(ok: bool, message: str) -> None:
    """Raise with message unless ok (for combinations of keys)."""
    if not ok:
        raise InfomaxError(message)


def known_keys(group: str, values: dict, known: Collection) -> None:
    """Raise on keys that are not fields of the group, listing the valid ones."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InfomaxError(f"{group}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")

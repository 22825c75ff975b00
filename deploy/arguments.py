"""Command-line number parsing for the stack's small programs (standard library only)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def number_in(
    kind: type[int] | type[float], low: float, high: float, *, low_inclusive: bool = True
) -> Callable[[str], float]:
    """An argparse type: a `kind` between `low` and `high`, naming the bounds when refused."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind.__name__}: {text!r}") from None
        if low_inclusive and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        if not low_inclusive and not low < value <= high:
            raise argparse.ArgumentTypeError(
                f"must be more than {low:g} and at most {high:g}, got {text}"
            )
        return value

    return parse

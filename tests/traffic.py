"""Test traffic through a router: GETs sent one after another, their answers counted."""

from __future__ import annotations

from collections import Counter

import httpx


async def send_gets(url: str, count: int, *, count_errors: bool = False) -> Counter[str]:
    """GET `url` `count` times in turn; count `<status> <body>` (or, if asked, error names)."""
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(count):
            try:
                response = await client.get(url)
            except httpx.TransportError as err:  # a reset upstream can cost the connection
                if not count_errors:
                    raise
                answers[type(err).__name__] += 1
            else:
                answers[f"{response.status_code} {response.text}"] += 1
    return answers

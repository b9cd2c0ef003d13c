"""Fixed-window rate limits kept in the database, so they hold across processes."""

from __future__ import annotations

import time

from sqlalchemy import Engine, case, insert, or_, update
from sqlalchemy.exc import IntegrityError

from sheen_pipeline.store.tables import rate_windows


def take(engine: Engine, name: str, limit: int, window_s: float, now: float | None = None) -> bool:
    """Count one use of `name`; False when `limit` uses already happened in this window.
    One UPDATE decides, so concurrent callers in any process cannot both get the last slot."""
    current = time.time() if now is None else now
    expired = rate_windows.c.window_start <= current - window_s
    statement = (
        update(rate_windows)
        .where(rate_windows.c.name == name)
        .where(or_(expired, rate_windows.c.count < limit))
        .values(
            window_start=case((expired, current), else_=rate_windows.c.window_start),
            count=case((expired, 1), else_=rate_windows.c.count + 1),
        )
    )
    for _ in range(2):
        with engine.begin() as conn:
            if conn.execute(statement).rowcount == 1:
                return True
        try:
            with engine.begin() as conn:
                conn.execute(insert(rate_windows).values(name=name, window_start=current, count=1))
        except IntegrityError:
            continue  # another process created the row first: count against it
        return limit >= 1
    return False  # the row exists and its window is full

"""Failed sign-ins slow down guessing: after too many, the form refuses for a while.

Counted per (email, client address) and per client address in ``signin_throttle``, the
database every server process shares: behind a load balancer a guesser meets one limit, not
one per server. A failure is one upsert per count (atomic on both backends, so concurrent
failures never lose a count); sign-ins are rare and argon2 already costs each guess tens of
milliseconds, so the extra write costs nothing that matters. This stops a patient attacker at
a few dozen guesses per quarter hour instead of thousands.

Windows are measured with each server's wall clock (they are written by one server and read
by another): servers whose clocks disagree by a few seconds shift a 15-minute window by that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, case, delete, select, tuple_
from sqlalchemy.orm import Session

from trapline.accounts.signin_throttle import SigninFailureWindow
from trapline.db.engine import Database
from trapline.db.upsert import dialect_insert

__all__ = ["LoginThrottle"]

_TABLE = cast(Table, SigninFailureWindow.__table__)
# Expired rows pruned per failure: enough to keep up with any flood of failures, which adds
# at most two rows each.
_PRUNE_BATCH = 100


@dataclass
class LoginThrottle:
    database: Database
    per_account: int = 10
    per_address: int = 50
    window_seconds: float = 15 * 60
    clock: Callable[[], float] = time.time

    def _keys(self, email: str, address: str) -> list[tuple[tuple[str, str, str], int]]:
        # Account first, then address: every failure locks the rows in this order, so two
        # concurrent failures never wait on each other in a cycle.
        return [
            (("account", email.strip().lower()[:254], address[:255]), self.per_account),
            (("address", "", address[:255]), self.per_address),
        ]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def retry_after(self, email: str, address: str) -> float:
        """Seconds until this sign-in may be tried again; 0 when it may be tried now."""
        now = self._now()
        keys = self._keys(email, address)
        limits = dict(keys)
        with self.database.session(write=False) as session:
            rows = session.execute(
                select(
                    _TABLE.c.scope, _TABLE.c.email, _TABLE.c.address, _TABLE.c.window_start, _TABLE.c.failures
                ).where(tuple_(_TABLE.c.scope, _TABLE.c.email, _TABLE.c.address).in_([key for key, _ in keys]))
            ).all()
        window = timedelta(seconds=self.window_seconds)
        wait = 0.0
        for scope, row_email, row_address, started, failures in rows:
            ends = started + window
            if ends > now and failures >= limits[(scope, row_email, row_address)]:
                wait = max(wait, (ends - now).total_seconds())
        return wait

    def failed(self, email: str, address: str) -> None:
        now = self._now()
        cut = now - timedelta(seconds=self.window_seconds)
        with self.database.session(write=True) as session:
            for (scope, key_email, key_address), _ in self._keys(email, address):
                insert = dialect_insert(session, _TABLE).values(
                    scope=scope, email=key_email, address=key_address, window_start=now, failures=1
                )
                # One statement whatever the row's state: absent → 1, window over → restart
                # at 1, else +1. Both sides of SET read the row as it was.
                expired = _TABLE.c.window_start <= cut
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["scope", "email", "address"],
                        set_={
                            "failures": case((expired, 1), else_=_TABLE.c.failures + 1),
                            "window_start": case((expired, now), else_=_TABLE.c.window_start),
                        },
                    )
                )
            _prune(session, cut)
            session.commit()

    def succeeded(self, email: str, address: str) -> None:
        (scope, key_email, key_address), _ = self._keys(email, address)[0]
        with self.database.session(write=True) as session:
            session.execute(
                delete(_TABLE).where(
                    _TABLE.c.scope == scope, _TABLE.c.email == key_email, _TABLE.c.address == key_address
                )
            )
            session.commit()

    def clear(self) -> None:
        with self.database.session(write=True) as session:
            session.execute(delete(_TABLE))
            session.commit()


def _prune(session: Session, cut: datetime) -> None:
    """Delete some rows whose window has ended, so made-up emails do not pile up forever.

    Rows another transaction holds are skipped (SKIP LOCKED on PostgreSQL; SQLite has one
    writer): a prune waiting on a row whose owner waits on a row the prune took would be a
    deadlock.
    """
    key = tuple_(_TABLE.c.scope, _TABLE.c.email, _TABLE.c.address)
    expired = (
        select(_TABLE.c.scope, _TABLE.c.email, _TABLE.c.address)
        .where(_TABLE.c.window_start <= cut)
        .limit(_PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    stale = session.execute(expired).all()
    if stale:
        session.execute(delete(_TABLE).where(key.in_([tuple(row) for row in stale])))

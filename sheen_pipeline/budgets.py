"""Budgets checked before money is spent. A build is admitted only when its whole estimate fits
the budgets of its user and project (per day and per month), and then holds it: concurrent builds
of one user are either admitted with their money set aside or refused before they spend on tasks.
Every provider call reserves its worst case (prompt tokens + max_tokens at the model's price),
drawing first on its build's hold; a call that would go over is not made. After the call, the
reservation becomes a ledger entry of the exact cost, in one transaction. Whatever a build holds
is released when it ends (a killed build's, when its heartbeat check ends it). Under a budget, a
model without a price is refused: its cost could not be bounded.

The limits are SHEEN_BUDGETS (config/budget_limits.py), read when the settings load.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from sheen_pipeline.config.budget_limits import Budget, Budgets
from sheen_pipeline.models import TokenUsage
from sheen_pipeline.store.ledger import Entry, ledger_row
from sheen_pipeline.store.locks import held
from sheen_pipeline.store.spent import from_nano, to_nano
from sheen_pipeline.store.tables import budget_reservations, provider_calls

RESERVATION_TTL = timedelta(hours=1)  # the last resort for a hold no build end released


def admission_id(build_id: str) -> str:
    """The reservation id of a build's admission hold (reservation ids are at most 32
    characters; build ids may be longer)."""
    return "admit-" + hashlib.sha256(build_id.encode()).hexdigest()[:26]


class BudgetExceeded(RuntimeError):
    """A call (or a build) that would take a budget over its limit; nothing was spent on it."""

    def __init__(self, budget: Budget, spent_usd: Decimal, needed_usd: Decimal) -> None:
        self.budget, self.spent_usd, self.needed_usd = budget, spent_usd, needed_usd
        super().__init__(
            f"budget exceeded: {budget.name} is ${budget.limit_usd}, ${spent_usd:.6f} is spent "
            f"or reserved, and this needs up to ${needed_usd:.6f}"
        )

    def figures(self) -> dict[str, str]:
        return {
            "budget": self.budget.name,
            "limit_usd": str(self.budget.limit_usd),
            "spent_usd": f"{self.spent_usd:.6f}",
            "needed_usd": f"{self.needed_usd:.6f}",
        }


class UnpricedUnderBudget(BudgetExceeded):
    """A call or build whose model has no price, for an owner with a budget: its cost could not
    be bounded, so it is refused like one that does not fit."""

    def __init__(self, budget: Budget) -> None:
        self.budget, self.spent_usd, self.needed_usd = budget, Decimal(0), Decimal(0)
        RuntimeError.__init__(
            self,
            f"budget {budget.name} applies, and the model has no price, so what it would cost "
            "cannot be bounded: give the model a price in SHEEN_PRICES",
        )


@dataclass(frozen=True)
class Payer:
    """Who a provider call is made for."""

    build_id: str
    project_id: str
    user_id: str
    kind: str  # plan | task
    task_id: str | None = None


_payer: ContextVar[Payer | None] = ContextVar("sheen_payer", default=None)


@contextmanager
def paying(payer: Payer) -> Iterator[None]:
    """Provider calls made inside are checked against, and billed to, payer's budgets."""
    token = _payer.set(payer)
    try:
        yield
    finally:
        _payer.reset(token)


@dataclass(frozen=True)
class Reservation:
    reservation_id: str | None  # None: nothing was held (no budget applies)
    payer: Payer
    drawn_nusd: int = 0  # the part of it taken from the build's admission hold


class BudgetBook:
    """The budgets and what is spent or held against them, in the app database."""

    def __init__(self, engine: Engine, budgets: Budgets) -> None:
        self.engine, self.budgets = engine, budgets

    def admit(self, build_id: str, project_id: str, user_id: str, estimate: Decimal | None) -> None:
        """Hold the build's whole estimate against its owner's budgets, or raise
        BudgetExceeded (UnpricedUnderBudget without an estimate) having held nothing."""
        budgets = self.budgets.for_owner(project_id, user_id)
        if not budgets:
            return
        estimate = self._priced(estimate, budgets)
        with self._locked() as conn:
            admission = budget_reservations.c.reservation_id == admission_id(build_id)
            conn.execute(delete(budget_reservations).where(admission))  # planned again: anew
            now = datetime.now(UTC)
            for budget in budgets:
                spent = spent_or_reserved(conn, budget, now)
                if spent + estimate > budget.limit_usd:
                    raise BudgetExceeded(budget, spent, estimate)
            conn.execute(
                insert(budget_reservations).values(
                    reservation_id=admission_id(build_id),
                    build_id=build_id,
                    project_id=project_id,
                    user_id=user_id,
                    amount_nusd=to_nano(estimate),
                    created_at=now,
                )
            )

    def reserve(self, payer: Payer, worst_case_usd: Decimal | None) -> Reservation:
        """Hold worst_case_usd against payer's budgets, drawing first on the build's admission
        hold (only the rest is checked against the limits), or raise BudgetExceeded."""
        budgets = self.budgets.for_owner(payer.project_id, payer.user_id)
        if not budgets:
            return Reservation(None, payer)
        reservation_id = secrets.token_hex(8)
        worst_nusd = to_nano(self._priced(worst_case_usd, budgets))
        with self._locked() as conn:
            now = datetime.now(UTC)
            drawn = min(worst_nusd, self._held_for(conn, payer.build_id))
            extra = from_nano(worst_nusd - drawn)
            for budget in budgets:
                spent = spent_or_reserved(conn, budget, now)
                if extra > 0 and spent + extra > budget.limit_usd:
                    raise BudgetExceeded(budget, spent, extra)
            self._draw(conn, payer.build_id, drawn)
            conn.execute(
                insert(budget_reservations).values(
                    reservation_id=reservation_id,
                    build_id=payer.build_id,
                    project_id=payer.project_id,
                    user_id=payer.user_id,
                    amount_nusd=worst_nusd,
                    created_at=now,
                )
            )
        return Reservation(reservation_id, payer, drawn)

    def settle(self, conn: Connection, reservation: Reservation, cost_nusd: int) -> None:
        """The call is in the ledger: drop its reservation, and give back to the build's hold
        what it drew and did not spend."""
        conn.execute(
            delete(budget_reservations).where(
                budget_reservations.c.reservation_id == reservation.reservation_id
            )
        )
        self._draw(conn, reservation.payer.build_id, -max(reservation.drawn_nusd - cost_nusd, 0))

    def release(self, build_id: str) -> None:
        """The build ended: nothing it held counts any more."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(budget_reservations).where(budget_reservations.c.build_id == build_id)
            )

    def over(
        self, project_id: str, user_id: str, needed_usd: Decimal | None = Decimal(0)
    ) -> BudgetExceeded | None:
        """The first budget of this owner that is used up, or that needed_usd would take over
        its limit (any, when needed_usd is None: an unpriced model); None when all have room."""
        budgets = self.budgets.for_owner(project_id, user_id)
        if not budgets:
            return None  # no query at all when no budget applies (the default)
        try:
            needed_usd = self._priced(needed_usd, budgets)
        except UnpricedUnderBudget as refused:
            return refused
        with self.engine.connect() as conn:
            now = datetime.now(UTC)
            for budget in budgets:
                spent = spent_or_reserved(conn, budget, now)
                if spent >= budget.limit_usd or spent + needed_usd > budget.limit_usd:
                    return BudgetExceeded(budget, spent, needed_usd)
        return None

    def _priced(self, amount_usd: Decimal | None, budgets: list[Budget]) -> Decimal:
        """A priced amount as it is; an unpriced model's (None) as nothing when SHEEN_BUDGETS
        says `"allow_unpriced": true`, else refused (UnpricedUnderBudget)."""
        if amount_usd is not None:
            return amount_usd
        if self.budgets.allow_unpriced:
            return Decimal(0)
        raise UnpricedUnderBudget(budgets[0])

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """One transaction at a time across processes, so holds never overshoot together."""
        with held(self.engine, "budgets") as conn:
            yield conn

    @staticmethod
    def _held_for(conn: Connection, build_id: str) -> int:
        held = conn.execute(
            select(budget_reservations.c.amount_nusd).where(
                budget_reservations.c.reservation_id == admission_id(build_id)
            )
        ).scalar()
        return int(held or 0)

    @staticmethod
    def _draw(conn: Connection, build_id: str, amount_nusd: int) -> None:
        if amount_nusd:
            conn.execute(
                update(budget_reservations)
                .where(budget_reservations.c.reservation_id == admission_id(build_id))
                .values(amount_nusd=budget_reservations.c.amount_nusd - amount_nusd)
            )


class Meter:
    """A provider's calls: checked against budgets before each is made, each recorded in the
    ledger after it."""

    def __init__(self, book: BudgetBook, provider: str, model: str) -> None:
        self.book, self.provider, self.model = book, provider, model

    def reserve(self, worst_case_usd: Decimal | None) -> Reservation | None:
        """None outside `paying` (a call made for no build is neither checked nor billed)."""
        payer = _payer.get()
        return None if payer is None else self.book.reserve(payer, worst_case_usd)

    def settle(self, reservation: Reservation | None, usage: TokenUsage, outcome: str) -> None:
        """Replace the reservation by the call's exact cost in the ledger."""
        if reservation is None:
            return
        payer = reservation.payer
        entry = Entry(
            build_id=payer.build_id,
            project_id=payer.project_id,
            user_id=payer.user_id,
            provider=self.provider,
            model=self.model,
            kind=payer.kind,
            outcome=outcome,
            usage=usage.model_copy(update={"calls": 1}),
            task_id=payer.task_id,
        )
        cost = usage.cost_usd
        with self.book.engine.begin() as conn:
            conn.execute(insert(provider_calls).values(**ledger_row(entry)))
            if reservation.reservation_id is not None:
                self.book.settle(conn, reservation, 0 if cost is None else to_nano(cost))


def spent_or_reserved(conn: Connection, budget: Budget, now: datetime) -> Decimal:
    """What the budget's owner spent in its period (ledger) plus what calls in flight hold."""
    owner_of = {"user": "user_id", "project": "project_id"}[budget.scope]
    spent = conn.execute(
        select(func.coalesce(func.sum(provider_calls.c.cost_nusd), 0)).where(
            provider_calls.c[owner_of] == budget.owner,
            provider_calls.c.created_at >= budget.period_start(now),
        )
    ).scalar_one()
    held = conn.execute(
        select(func.coalesce(func.sum(budget_reservations.c.amount_nusd), 0)).where(
            budget_reservations.c[owner_of] == budget.owner,
            budget_reservations.c.created_at >= now - RESERVATION_TTL,
        )
    ).scalar_one()
    return from_nano(int(spent) + int(held))

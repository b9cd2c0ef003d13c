"""Money already spent, written straight into the ledger."""

from __future__ import annotations

from decimal import Decimal

from sheen_pipeline.config import Settings
from sheen_pipeline.models import TokenUsage
from sheen_pipeline.store.ledger import Entry, Ledger


def spend(
    settings: Settings, usd: str, user_id: str = "anonymous", project_id: str = "default"
) -> None:
    usage = TokenUsage(input_tokens=1, cost_usd=Decimal(usd), calls=1)
    Ledger(settings.database_url).record(
        Entry(
            "bearlier", project_id, user_id, "anthropic", "claude-sonnet-5-5", "task", "ok", usage
        )
    )

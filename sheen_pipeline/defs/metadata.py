"""Metadata values shared by the ops."""

from decimal import Decimal

from dagster import FloatMetadataValue, MetadataValue, TextMetadataValue


def cost_metadata(cost_usd: Decimal | None) -> FloatMetadataValue | TextMetadataValue:
    """A float the UI can plot, or text when the model's price is unknown (never a fake 0)."""
    if cost_usd is None:
        return MetadataValue.text("unknown")
    return MetadataValue.float(float(cost_usd))

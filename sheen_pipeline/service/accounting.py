"""What a build's work cost and how a build ends badly: usage on the build's running total, paid
failures, the failed state and its event, cost anomalies, and cost reports."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from statistics import median as median_of

from sheen_pipeline.costs import CostReport, cost_report
from sheen_pipeline.events.payloads import (
    BuildFailed,
    CostAnomaly,
)
from sheen_pipeline.models import (
    BuildRequest,
    TokenUsage,
)
from sheen_pipeline.providers.base import ProviderError
from sheen_pipeline.redaction import redact
from sheen_pipeline.service.parts import BuildParts, owner_of
from sheen_pipeline.store.builds import UnknownBuild
from sheen_pipeline.store.ledger import Entry

ANOMALY_WINDOW = 20  # recent builds of the project a build's cost is compared with
ANOMALY_MIN_BUILDS = 3


class Accounting(BuildParts):
    """Usage, failure and cost figures, shared by every step."""

    def _cost_anomaly(self, build_id: str, cost: Decimal | None) -> CostAnomaly | None:
        """A build (succeeded or failed) that cost over SHEEN_COST_ANOMALY_FACTOR times the
        median of its project's recent builds that did paid work (at least ANOMALY_MIN_BUILDS
        of them, so one cheap build is no median; $0 cache-hit rebuilds do not count)."""
        project_id = self.store.get_build(build_id).request.project_id
        recent = self.store.recent_costs(project_id, build_id, ANOMALY_WINDOW)
        if cost is None or len(recent) < ANOMALY_MIN_BUILDS:
            return None
        median, factor = median_of(recent), self.settings.cost_anomaly_factor
        if median <= 0 or cost <= median * Decimal(str(factor)):
            return None
        return CostAnomaly(
            cost_usd=cost, median_usd=median, factor=factor, builds_compared=len(recent)
        )

    def _spend(
        self,
        build_id: str,
        request: BuildRequest,
        usage: TokenUsage,
        task_id: str | None = None,
        *,
        hit_saved: Decimal | None = None,
    ) -> None:
        """What a piece of work cost goes on the build's running total. Paid calls are in the
        ledger already (one entry each, made by the provider's meter); a result-cache hit,
        `hit_saved` set, goes in with what the original work cost."""
        self.store.add_usage(build_id, usage)
        if hit_saved is None:
            return
        project_id, user_id = owner_of(request)
        self.ledger.record(
            Entry(
                build_id=build_id,
                project_id=project_id,
                user_id=user_id,
                provider=self.provider.name,
                model=self.provider.model,
                kind="plan" if task_id is None else "task",
                outcome="cache_hit",
                usage=usage,
                task_id=task_id,
                saved_usd=hit_saved,
            )
        )

    def _pay(self, build_id: str, error: Exception) -> None:
        """A failed provider call's answers were paid for: they count in the build's cost."""
        if isinstance(error, ProviderError):
            self.store.add_usage(build_id, error.usage)

    def fail(
        self,
        build_id: str,
        reason: str,
        stalled_before: float | None = None,
        run_id: str | None = None,
    ) -> TokenUsage:
        """Mark the build failed and emit build_failed, once per run however many steps fail;
        returns what the build has cost so far (every paid call), which the event carries.
        With stalled_before, only a build still running whose heartbeat stopped before it;
        with run_id, only while that run is the build's latest."""
        reason = redact(reason, self.settings.secrets)
        newly_failed = self.store.mark_failed(build_id, reason, stalled_before, run_id)
        if newly_failed:
            self.budgets.release(build_id)
        spent = self.store.get_build(build_id).usage
        if newly_failed:
            anomaly = self._cost_anomaly(build_id, spent.cost_usd)
            if anomaly is not None:  # a failed build that cost far too much says so too
                self.events.emit(build_id, anomaly)
            self.events.emit(build_id, BuildFailed(reason=reason, usage=spent))
        return spent

    def cost_report(self, since: datetime, until: datetime) -> CostReport:
        """What every priced piece of work in [since, until) cost, and the builds that ended."""
        return cost_report(self.ledger, self.store, self.settings.prices, since, until)

    def fail_build_or_request(
        self, build_id: str, request_id: str | None, run_id: str, reason: str
    ) -> None:
        """Run run_id failed for good: fail its build, or its request when it failed before the
        build was recorded (for example at launch). A no-op for a build its steps already
        failed, and for one a later run (a re-execution) has taken over."""
        try:
            self.fail(build_id, reason, run_id=run_id)
        except UnknownBuild:
            if request_id is not None:
                self.requests.fail(request_id, reason)

"""The read side of soh-es: read models rebuilt from the event log."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.runner import Projection


def default_projections() -> list[Projection]:
    """Returns a fresh instance of every projection, in the order they run."""
    from projections.audit import AuditLog
    from projections.current_plans import CurrentPlans
    from projections.portfolio import Portfolio
    from projections.scores import QuarterlyScores

    return [CurrentPlans(), QuarterlyScores(), AuditLog(), Portfolio()]

"""A demo portfolio: four partners rated over five quarters, with every feature used.

The events are backdated into past quarters (each plan's in time order) so
that scorecards show trajectories, histories span a year and replays as of a
past quarter differ from today.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from soh_es.application import AccountPlans, Outcome
from soh_es.domain import Context, Source
from soh_es.errors import ConflictError
from soh_es.quarters import Quarter

logger = logging.getLogger(__name__)

QUARTERS_RATED = 5


@dataclass(frozen=True)
class DemoPartner:
    """One partner of the demo and the story its scores tell."""

    name: str
    owner: str
    successor: str | None
    totals: tuple[int, ...]
    segments: tuple[str, ...]
    barrier: str
    opportunity: str
    value: int


PARTNERS = (
    DemoPartner(
        "Northwind Distribution",
        "maria.chen",
        None,
        (20, 23, 26, 29, 32),
        ("Mid-market retail", "Regional logistics"),
        "Their presales team lacks certification on our platform",
        "Regional rollout for a grocery chain",
        420_000,
    ),
    DemoPartner(
        "Contoso Systems",
        "david.okafor",
        "priya.nair",
        (32, 31, 28, 25, 22),
        ("Public sector", "Healthcare"),
        "A competitor funds their marketing with higher rebates",
        "Hospital group records migration",
        760_000,
    ),
    DemoPartner(
        "Fabrikam Integrators",
        "priya.nair",
        None,
        (25, 26, 25, 26, 25),
        ("Manufacturing",),
        "Long procurement cycles at their customers",
        "Plant analytics upgrade",
        180_000,
    ),
    DemoPartner(
        "Litware Partners",
        "maria.chen",
        None,
        (17, 19),
        ("Start-ups", "Professional services"),
        "No dedicated alliance manager on their side",
        "Co-selling pilot for accounting firms",
        60_000,
    ),
)


def plan_id_of(partner: DemoPartner) -> UUID:
    """Returns the fixed plan id of a demo partner, so loading twice is harmless."""
    return uuid5(NAMESPACE_URL, f"soh-es:demo:{partner.name}")


def spread(total: int, keys: Sequence[str], turn: int) -> dict[str, int]:
    """Returns ratings of ``keys`` that add up to ``total``, varied by ``turn``."""
    base, extra = divmod(total, len(keys))
    ratings = {}
    for index, key in enumerate(keys):
        bonus = 1 if (index + turn) % len(keys) < extra else 0
        ratings[key] = min(5, base + bonus)
    return ratings


def _record_id(outcome: Outcome) -> str:
    if outcome.record_id is None:
        raise ValueError("The command added no record.")
    return outcome.record_id


class _Clock:
    """Hands out increasing past instants for one plan's events."""

    def __init__(self, start: datetime, now: datetime) -> None:
        self.at = start
        self.now = now

    def at_least(self, instant: datetime) -> datetime:
        latest = self.now - timedelta(minutes=1)
        self.at = min(max(self.at + timedelta(seconds=1), instant), latest)
        return self.at


def load_demo(plans: AccountPlans, *, now: datetime | None = None) -> list[UUID]:
    """Loads the demo portfolio; returns the ids of the plans it opened."""
    now = now or datetime.now(UTC)
    calendar = plans.calendar
    current = calendar.quarter_of(now)
    opened = []
    for partner in PARTNERS:
        first = current
        for _ in range(len(partner.totals) - 1):
            first = first.previous()
        try:
            _load_partner(plans, partner, first, now)
        except ConflictError:
            logger.info("The demo plan of %s is already loaded", partner.name)
            continue
        opened.append(plan_id_of(partner))
    return opened


def _load_partner(
    plans: AccountPlans, partner: DemoPartner, first: Quarter, now: datetime
) -> None:
    calendar = plans.calendar
    start = calendar.start(first) + timedelta(days=3)
    clock = _Clock(start, now)
    plan_id = plan_id_of(partner)

    def ctx(actor: str, when: datetime, reason: str | None = None) -> Context:
        return Context(
            actor, reason=reason, source=Source.CLI, recorded_at=clock.at_least(when)
        )

    owner = partner.owner
    plans.open_plan(
        partner.name,
        owner=owner,
        plan_id=plan_id,
        ctx=ctx(owner, start, "New strategic partner"),
    )

    # The first week: the profile and the shape of the relationship.
    week = start + timedelta(days=4)
    plans.edit_section(
        plan_id,
        "profile",
        {
            "locations": ["Rotterdam", "Lyon"],
            "size": "420 employees",
            "partnership_status": "strategic",
            "partner_since": "2021-03-01",
            "market_segments": list(partner.segments),
            "customer_base": "About 300 active customers, mostly repeat buyers.",
            "competitive_positioning": "Strong services arm, weak product marketing.",
            "market_share": "12.5",
        },
        ctx=ctx(owner, week),
    )
    sponsor = plans.add_record(
        plan_id,
        "stakeholder",
        {
            "name": "Elena Rossi",
            "title": "VP Alliances",
            "decision_role": "decision_maker",
            "influence": "high",
            "relationship_strength": 4,
            "email": "elena.rossi@example.com",
        },
        ctx=ctx(owner, week),
    ).record_id
    plans.add_record(
        plan_id,
        "stakeholder",
        {
            "name": "Tom Becker",
            "title": "Head of Presales",
            "decision_role": "champion",
            "influence": "medium",
            "relationship_strength": 3,
        },
        ctx=ctx(owner, week),
    )
    plans.edit_section(
        plan_id,
        "goals",
        {"summary": "Grow recurring revenue through joint offers."},
        ctx=ctx(owner, week),
    )
    plans.add_record(
        plan_id,
        "goal",
        {
            "level": "corporate",
            "description": "Double recurring revenue within three years",
            "partnership_contribution": "Our platform is the base of their offers",
            "success_metric": "Recurring revenue growth per year",
        },
        ctx=ctx(owner, week),
    )
    plans.add_record(
        plan_id,
        "goal",
        {
            "level": "stakeholder",
            "description": "Be seen as the innovation leader in the region",
            "stakeholder_id": sponsor,
            "success_metric": "Two joint case studies a year",
        },
        ctx=ctx(owner, week),
    )
    plans.edit_section(
        plan_id,
        "roles",
        {
            "communication_protocol": "Weekly call, shared channel for deals",
            "escalation_path": "Channel manager, then the VP Alliances",
            "review_mechanism": "Quarterly business review",
            "review_cadence": "Quarterly",
        },
        ctx=ctx(owner, week),
    )
    for party, description in (
        ("ours", "Enablement, demo systems and co-marketing funds"),
        ("partner", "Qualified pipeline and first-line support"),
        ("joint", "Account planning for the top twenty customers"),
    ):
        plans.add_record(
            plan_id,
            "responsibility",
            {"party": party, "description": description},
            ctx=ctx(owner, week),
        )
    plans.edit_section(
        plan_id,
        "market_demand",
        {
            "market_size": "85000000",
            "market_growth": "7.5",
            "competitive_landscape": "Two global vendors and many local resellers.",
            "emerging_opportunities": ["AI assistants", "Data sovereignty offers"],
            "threats": ["Price pressure", "Vendor consolidation"],
        },
        ctx=ctx(owner, week),
    )
    for segment in partner.segments:
        plans.add_record(
            plan_id,
            "segment",
            {"name": segment, "needs": "Faster deployment, predictable costs"},
            ctx=ctx(owner, week),
        )
    plans.add_record(
        plan_id,
        "barrier",
        {"description": partner.barrier, "strategy": "Fund a joint enablement plan"},
        ctx=ctx(owner, week),
    )
    plans.edit_section(
        plan_id,
        "pipeline",
        {"summary": "Mostly expansion deals at existing customers."},
        ctx=ctx(owner, week),
    )
    deal = _record_id(
        plans.add_record(
            plan_id,
            "opportunity",
            {
                "name": partner.opportunity,
                "kind": "deal",
                "stage": "qualified",
                "value": partner.value,
                "probability": 40,
                "resources_required": "A solution architect for two weeks",
            },
            ctx=ctx(owner, week),
        )
    )
    plans.add_record(
        plan_id,
        "opportunity",
        {
            "name": "Long-term platform standardisation",
            "kind": "strategic",
            "stage": "identified",
            "value": partner.value * 3,
            "probability": 10,
        },
        ctx=ctx(owner, week),
    )

    # Each quarter: initiatives, ratings, and the health notes.
    keys = plans.rubric_schedule().for_quarter(first).keys
    quarter = first
    previous_initiative: str | None = None
    for turn, total in enumerate(partner.totals):
        begins = calendar.start(quarter)
        if previous_initiative is not None:
            plans.change_record(
                plan_id,
                "initiative",
                previous_initiative,
                {"status": "done"},
                ctx=ctx(owner, begins + timedelta(days=5), "Finished on time"),
            )
        initiative = _record_id(
            plans.add_record(
                plan_id,
                "initiative",
                {
                    "title": f"Joint campaign {quarter}",
                    "quarter": str(quarter),
                    "objective": "Generate qualified leads in the main segment",
                    "owner_party": "joint",
                    "owner": owner,
                    "deadline": (calendar.end(quarter) - timedelta(days=7)).date(),
                    "budget": 25000,
                    "success_metrics": ["40 qualified leads", "5 proposals"],
                    "status": "in_progress",
                },
                ctx=ctx(owner, begins + timedelta(days=8)),
            )
        )
        plans.add_record(
            plan_id,
            "action",
            {
                "initiative_id": initiative,
                "description": "Agree the target account list",
                "owner": owner,
                "due_date": (begins + timedelta(days=30)).date(),
                "status": "open",
            },
            ctx=ctx(owner, begins + timedelta(days=8)),
        )
        plans.add_record(
            plan_id,
            "risk",
            {
                "initiative_id": initiative,
                "description": "Their sales team is busy with year-end deals",
                "likelihood": "medium",
                "impact": "high",
                "mitigation": "Start with two named reps",
            },
            ctx=ctx(owner, begins + timedelta(days=8)),
        )
        plans.rate_indicators(
            plan_id,
            quarter,
            spread(total, keys, turn),
            ctx=ctx(owner, begins + timedelta(days=20), "Quarterly scorecard"),
        )
        plans.edit_section(
            plan_id,
            "health",
            {
                "partner_satisfaction": max(1, min(5, total // 7)),
                "engagement": max(1, min(5, (total + 3) // 7)),
                "mindshare": str(min(90, total * 2)),
                "recent_wins": [f"Closed two deals in {quarter}"],
                "challenges": [partner.barrier],
            },
            ctx=ctx(owner, begins + timedelta(days=21)),
        )
        if turn == len(partner.totals) - 2:
            plans.change_record(
                plan_id,
                "opportunity",
                deal,
                {"stage": "negotiation", "probability": 70},
                ctx=ctx(owner, begins + timedelta(days=40), "Proposal accepted"),
            )
            plans.record_review(
                plan_id,
                reviewed_on=(begins + timedelta(days=45)).date(),
                summary="Quarterly business review with the partner's leadership.",
                ctx=ctx(owner, begins + timedelta(days=45)),
            )
            if partner.successor is not None:
                plans.hand_over(
                    plan_id,
                    new_owner=partner.successor,
                    notes="Scores are slipping; the competitor's rebates need a "
                    "response before the next quarter.",
                    ctx=ctx(owner, begins + timedelta(days=60), "Owner moves team"),
                )
                owner = partner.successor
        previous_initiative = initiative
        quarter = quarter.next()
    logger.info("Loaded the demo plan of %s", partner.name)

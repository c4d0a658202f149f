"""Read models on both stores: what they hold, how they are kept, how they are read."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg import sql

from projections import default_projections, queries
from projections.audit import change_fields
from projections.current_plans import PLANS
from projections.portfolio import normalize
from projections.runner import ProjectionRunner
from projections.store import POSITIONS_TABLE, ReadStore, to_json
from soh_es.application import AccountPlans
from soh_es.domain import ERASED, Context, Source
from soh_es.errors import SohError
from soh_es.quarters import Quarter
from soh_es.rubric import DEFAULT_RUBRIC, Band, Rubric
from soh_es.views import score_document

ALL = DEFAULT_RUBRIC.keys
START = datetime(2025, 1, 6, 12, tzinfo=UTC)


def at(day: str, actor: str = "alice", reason: str | None = None) -> Context:
    """A context recorded at noon UTC on ``day``."""
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return Context(actor, reason=reason, source=Source.IMPORT, recorded_at=moment)


def ratings(total: int, keys: tuple[str, ...] = ALL) -> dict[str, int]:
    """Ratings of ``keys`` that add up to ``total``."""
    base, extra = divmod(total, len(keys))
    return {key: base + (1 if i < extra else 0) for i, key in enumerate(keys)}


@pytest.fixture
def runner(app: AccountPlans) -> ProjectionRunner:
    """A runner of every projection, with small batches so runs cross several."""
    return ProjectionRunner(app, default_projections(), batch_size=7)


@pytest.fixture
def store(runner: ProjectionRunner) -> ReadStore:
    """The read store of the application under test."""
    return runner.store


# What replaying the aggregates gives, compared with the read models.


def as_json(value: Any) -> Any:
    """Returns ``value`` as it reads back from JSON."""
    return json.loads(to_json(value))


def expected_summary(document: dict[str, Any]) -> dict[str, Any]:
    """The list fields of a plan, derived from its replayed document."""
    latest = document["sections"]["health"]["scorecard"]["latest_complete"] or {}
    metrics = document["sections"]["pipeline"]["metrics"]
    return {
        "plan_id": document["id"],
        "version": document["version"],
        "partner": document["partner"],
        "owner": document["owner"],
        "status": document["status"],
        "latest_quarter": latest.get("quarter"),
        "total": latest.get("total"),
        "band": latest.get("band"),
        "trajectory": latest.get("trajectory"),
        "pipeline": {
            "open_value": metrics["open_value"],
            "weighted_forecast": metrics["weighted_forecast"],
            "active_opportunities": metrics["active_opportunities"],
        },
    }


def audit_view(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of an audit item that a replayed history also has."""
    keys = (
        "version",
        "event",
        "section",
        "actor",
        "recorded_at",
        "reason",
        "source",
        "correlation_id",
        "record_kind",
        "record_id",
        "changes",
    )
    return {key: item[key] for key in keys}


def replayed_audit(app: AccountPlans, plan_id: UUID) -> list[dict[str, Any]]:
    """The plan's history from a replay, shaped as audit items."""
    return [
        as_json(
            {
                "version": change.version,
                "event": change.event,
                "section": change.section,
                "actor": change.actor,
                "recorded_at": change.recorded_at.isoformat().replace("+00:00", "Z"),
                "reason": change.reason,
                "source": change.source,
                "correlation_id": change.correlation_id,
                "record_kind": change.record_kind,
                "record_id": change.record_id,
                "changes": change_fields(change),
            }
        )
        for change in app.history(plan_id, limit=500).changes
    ]


def all_rows(store: ReadStore, table: str, order: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in a stable order."""
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                store.table(table), sql.SQL(order)
            )
        )
        return cursor.fetchall()


def dump_read_models(store: ReadStore) -> dict[str, list[dict[str, Any]]]:
    """Every read table's rows, for comparing two ways of building them."""
    return {
        "soh_read_plans": all_rows(store, "soh_read_plans", "plan_id"),
        "soh_read_scores": all_rows(store, "soh_read_scores", "plan_id, quarter"),
        "soh_read_audit": all_rows(store, "soh_read_audit", "position"),
        "soh_read_concerns": all_rows(
            store, "soh_read_concerns", "plan_id, kind, normalized"
        ),
    }


def notification_count(app: AccountPlans) -> int:
    """The number of events in the notification log."""
    return len(app.recorder.select_notifications(None, 10**7))


def assert_read_models_match_replay(app: AccountPlans, store: ReadStore) -> None:
    """Compares every read model with what replaying the aggregates gives."""
    documents = {}
    for plan_id in app.plan_ids():
        document = as_json(app.plan_document(plan_id))
        documents[plan_id] = document
        assert queries.plan_document(store, plan_id) == document
        assert queries.score_history(store, plan_id) == [
            as_json(score_document(score)) for score in app.scores(plan_id)
        ]
        audit = queries.audit_by_plan(store, plan_id, limit=500)
        assert [audit_view(item) for item in audit.items] == replayed_audit(
            app, plan_id
        )

    page = queries.list_plans(store, limit=500)
    assert page.total == len(documents)
    listed = {item["plan_id"]: item for item in page.items}
    for document in documents.values():
        item = listed[document["id"]]
        assert {k: item[k] for k in expected_summary(document)} == expected_summary(
            document
        )

    active = [d for d in documents.values() if d["status"] == "active"]
    report = queries.portfolio(store)
    assert report["plans"] == len(active)
    assert report["bands"] == dict(
        Counter(expected_summary(d)["band"] or "unscored" for d in active)
    )
    assert report["trajectories"] == dict(
        Counter(expected_summary(d)["trajectory"] or "unscored" for d in active)
    )
    assert report["pipeline"]["open_value"] == str(
        sum(
            (
                Decimal(d["sections"]["pipeline"]["metrics"]["open_value"])
                for d in active
            ),
            Decimal("0.00"),
        )
    )
    concerns: Counter[tuple[str, str]] = Counter()
    for document in active:
        market = document["sections"]["market_demand"]
        texts = {("barrier", normalize(b["description"])) for b in market["barriers"]}
        texts |= {("threat", normalize(t)) for t in market.get("threats", [])}
        concerns.update(texts)
    assert {
        (c["kind"], c["normalized"]): c["partners"]
        for c in report["recurring_concerns"]
    } == {key: n for key, n in concerns.items() if n >= 2}

    assert len(all_rows(store, "soh_read_audit", "position")) == notification_count(app)


# A random history, kept incrementally, then rebuilt from zero.

texts = st.sampled_from(["Price", "price!", "Training gaps", "Slow  support", "Legacy"])
FIVE = Rubric(
    version=0,
    indicators=DEFAULT_RUBRIC.indicators[:5],
    bands=(
        Band("intervention", 5, 14),
        Band("healthy", 15, 19),
        Band("strong", 20, 25),
    ),
    trajectory_threshold=1,
)


def run_command(
    app: AccountPlans, plan_id: UUID, data: st.DataObject, ctx: Context
) -> None:
    """Draws one command and runs it on the plan; refusals write nothing."""
    plan = app.get_plan(plan_id)
    people = list(plan.records["stakeholder"])
    deals = list(plan.records["opportunity"])
    actions = list(plan.records["action"])
    choice = data.draw(
        st.sampled_from(
            [
                "edit",
                "person",
                "change_person",
                "erase",
                "remove_person",
                "barrier",
                "threats",
                "deal",
                "move_deal",
                "rate",
                "rate",
                "initiative",
                "close_action",
                "review",
                "hand_over",
                "archive",
                "restore",
                "rubric",
            ]
        )
    )
    if choice == "edit":
        app.edit_section(plan_id, "goals", {"summary": data.draw(texts)}, ctx=ctx)
    elif choice == "person":
        app.add_record(
            plan_id,
            "stakeholder",
            {"name": data.draw(texts), "email": "p@example.com", "title": "CTO"},
            ctx=ctx,
        )
    elif choice == "change_person" and people:
        app.change_record(
            plan_id,
            "stakeholder",
            data.draw(st.sampled_from(people)),
            data.draw(
                st.sampled_from(
                    [{"name": "Renamed"}, {"title": "CIO"}, {"phone": "+1 555"}]
                )
            ),
            ctx=ctx,
        )
    elif choice == "erase" and people:
        app.erase_stakeholder(plan_id, data.draw(st.sampled_from(people)), ctx=ctx)
    elif choice == "remove_person" and people:
        app.remove_record(
            plan_id, "stakeholder", data.draw(st.sampled_from(people)), ctx=ctx
        )
    elif choice == "barrier":
        app.add_record(plan_id, "barrier", {"description": data.draw(texts)}, ctx=ctx)
    elif choice == "threats":
        app.edit_section(
            plan_id,
            "market_demand",
            {"threats": data.draw(st.lists(texts, max_size=3))},
            ctx=ctx,
        )
    elif choice == "deal":
        app.add_record(
            plan_id,
            "opportunity",
            {
                "name": "Deal",
                "kind": "deal",
                "stage": "qualified",
                "value": data.draw(st.integers(0, 10**5)),
                "probability": data.draw(st.integers(0, 100)),
            },
            ctx=ctx,
        )
    elif choice == "move_deal" and deals:
        app.change_record(
            plan_id,
            "opportunity",
            data.draw(st.sampled_from(deals)),
            {"stage": data.draw(st.sampled_from(["proposal", "won", "lost"]))},
            ctx=ctx,
        )
    elif choice == "rate":
        assert ctx.recorded_at is not None
        current = app.calendar.quarter_of(ctx.recorded_at)
        quarter = data.draw(st.sampled_from([current.previous(), current]))
        keys = app.rubric_schedule().for_quarter(quarter).keys
        chosen = data.draw(st.sets(st.sampled_from(keys), min_size=1))
        app.rate_indicators(
            plan_id,
            quarter,
            {key: data.draw(st.integers(1, 5)) for key in sorted(chosen)},
            ctx=ctx,
        )
    elif choice == "initiative":
        assert ctx.recorded_at is not None
        initiative = app.add_record(
            plan_id,
            "initiative",
            {
                "title": "Enablement",
                "quarter": str(app.calendar.quarter_of(ctx.recorded_at)),
            },
            ctx=ctx,
        ).record_id
        due = ctx.recorded_at.date() + timedelta(days=data.draw(st.integers(-5, 20)))
        app.add_record(
            plan_id,
            "action",
            {"initiative_id": initiative, "description": "Train", "due_date": due},
            ctx=ctx,
        )
    elif choice == "close_action" and actions:
        app.change_record(
            plan_id,
            "action",
            data.draw(st.sampled_from(actions)),
            {"status": "done"},
            ctx=ctx,
        )
    elif choice == "review":
        assert ctx.recorded_at is not None
        app.record_review(plan_id, reviewed_on=ctx.recorded_at.date(), ctx=ctx)
    elif choice == "hand_over":
        app.hand_over(
            plan_id, new_owner=data.draw(st.sampled_from(["alice", "bob"])), ctx=ctx
        )
    elif choice == "archive":
        app.archive_plan(plan_id, ctx=ctx)
    elif choice == "restore":
        app.restore_plan(plan_id, ctx=ctx)
    elif choice == "rubric":
        assert ctx.recorded_at is not None
        quarter = app.calendar.quarter_of(ctx.recorded_at)
        app.adopt_rubric(
            Rubric(
                version=0,
                indicators=FIVE.indicators,
                bands=FIVE.bands,
                trajectory_threshold=FIVE.trajectory_threshold,
                effective_from=quarter.next(),
            ),
            ctx=ctx,
        )


@hypothesis_settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), steps=st.integers(1, 30))
def test_read_models_kept_as_events_arrive_and_rebuilt_equal_the_replay(
    app: AccountPlans, runner: ProjectionRunner, data: st.DataObject, steps: int
) -> None:
    clock = START
    plans = [
        app.open_plan(partner, ctx=Context("alice", recorded_at=clock)).plan_id
        for partner in ("Northwind", "Contoso")
    ]
    for _ in range(steps):
        clock += timedelta(days=data.draw(st.integers(0, 40)))
        actor = data.draw(st.sampled_from(["alice", "bob"]))
        ctx = Context(actor, reason="update", recorded_at=clock)
        try:
            run_command(app, data.draw(st.sampled_from(plans)), data, ctx)
        except SohError:
            pass
        if data.draw(st.booleans()):
            runner.run_once()

    runner.catch_up()
    assert_read_models_match_replay(app, runner.store)

    report = runner.rebuild()
    assert report.events == notification_count(app)
    assert_read_models_match_replay(app, runner.store)

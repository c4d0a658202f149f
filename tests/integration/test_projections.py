"""Read models on both stores: what they hold, how they are kept, how they are read."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
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
from projections.portfolio import normalize
from projections.runner import ProjectionRunner
from projections.store import ReadStore, to_json
from soh_es.application import AccountPlans
from soh_es.domain import ERASED, Context, Source
from soh_es.errors import SohError
from soh_es.quarters import Quarter
from soh_es.rubric import DEFAULT_RUBRIC, Band, Rubric
from soh_es.settings import Settings
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
    max_examples=15,
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


# Scores: bands and trajectories across quarters.


def test_bands_and_trajectories_follow_the_complete_quarters_and_late_corrections(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2025-01-10")).plan_id
    for quarter, day, total in (
        ("2025-Q1", "2025-03-10", 30),
        ("2025-Q2", "2025-06-10", 26),
        ("2025-Q3", "2025-09-10", 27),
        ("2025-Q4", "2025-12-10", 20),
    ):
        app.rate_indicators(plan_id, quarter, ratings(total), ctx=at(day))
    app.rate_indicators(plan_id, "2026-Q1", {ALL[0]: 5}, ctx=at("2026-01-10"))
    runner.catch_up()

    labels = [
        (s["quarter"], s["total"], s["band"], s["trajectory"])
        for s in queries.score_history(store, plan_id)
    ]
    assert labels == [
        ("2025-Q1", 30, "strong", "new"),
        ("2025-Q2", 26, "healthy", "declining"),
        ("2025-Q3", 27, "healthy", "stable"),
        ("2025-Q4", 20, "intervention", "declining"),
        ("2026-Q1", None, None, None),
    ]
    (item,) = queries.list_plans(store).items
    assert (item["latest_quarter"], item["band"], item["trajectory"]) == (
        "2025-Q4",
        "intervention",
        "declining",
    )
    assert item["declining_quarters"] == 1

    # A late correction of Q2 changes Q2's trajectory and Q3's after it.
    app.rate_indicators(plan_id, "2025-Q2", ratings(29), ctx=at("2026-01-15"))
    runner.catch_up()

    labels = [
        (s["quarter"], s["total"], s["band"], s["trajectory"])
        for s in queries.score_history(store, plan_id)
    ]
    assert labels[1:4] == [
        ("2025-Q2", 29, "strong", "stable"),
        ("2025-Q3", 27, "healthy", "declining"),
        ("2025-Q4", 20, "intervention", "declining"),
    ]
    (item,) = queries.list_plans(store).items
    assert item["declining_quarters"] == 2
    assert_read_models_match_replay(app, store)


def test_a_rubric_adopted_between_quarters_relabels_only_the_quarters_it_governs(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2025-01-10")).plan_id
    app.rate_indicators(plan_id, "2025-Q1", ratings(28), ctx=at("2025-03-10"))
    app.rate_indicators(plan_id, "2025-Q2", ratings(21), ctx=at("2025-06-10"))
    app.rate_indicators(plan_id, "2025-Q3", ratings(28), ctx=at("2025-07-05"))
    runner.catch_up()
    assert queries.score_history(store, plan_id)[2]["band"] == "strong"
    assert queries.score_history(store, plan_id)[2]["trajectory"] == "improving"

    # Five indicators from Q3 on, and a one-point threshold: Q3's rated
    # indicators are recounted without touching the plan.
    app.adopt_rubric(
        Rubric(
            version=0,
            indicators=FIVE.indicators,
            bands=FIVE.bands,
            trajectory_threshold=1,
            effective_from=Quarter(2025, 3),
        ),
        ctx=at("2025-07-10", actor="head-of-channel"),
    )
    runner.catch_up()

    history = queries.score_history(store, plan_id)
    assert [
        (s["quarter"], s["rubric_version"], s["total"], s["band"], s["trajectory"])
        for s in history
    ] == [
        ("2025-Q1", 1, 28, "strong", "new"),
        ("2025-Q2", 1, 21, "healthy", "declining"),
        ("2025-Q3", 2, 20, "strong", "declining"),
    ]
    (item,) = queries.list_plans(store).items
    assert (item["band"], item["trajectory"], item["total"]) == (
        "strong",
        "declining",
        20,
    )
    assert_read_models_match_replay(app, store)

    adopted = queries.audit_by_actor(store, "head-of-channel").items
    assert [a["event"] for a in adopted] == ["Started", "RubricAdopted"]
    assert adopted[1]["section"] == "rubric"


def test_explaining_a_score_change_names_the_indicators_that_moved_and_who_rated(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2025-01-10")).plan_id
    app.rate_indicators(plan_id, "2025-Q1", ratings(28), ctx=at("2025-03-10"))
    q2 = {**ratings(28), ALL[0]: 1, ALL[1]: 5}
    app.rate_indicators(
        plan_id, "2025-Q2", q2, ctx=at("2025-06-10", actor="bob", reason="QBR")
    )
    runner.catch_up()

    explained = queries.explain_score_change(store, plan_id, "2025-Q1", "2025-Q2")

    assert explained is not None
    assert explained["change"] == -2
    assert explained["after"]["trajectory"] == "declining"
    assert explained["moved"] == [ALL[0], ALL[1]]
    first = explained["indicators"][0]
    assert (first["before"], first["after"], first["change"]) == (4, 1, -3)
    assert (first["rated_by"], first["reason"]) == ("bob", "QBR")
    assert first["rated_at"] == "2025-06-10T12:00:00Z"
    assert queries.explain_score_change(store, plan_id, "2025-Q1", "2024-Q4") is None


# Personal data.


def test_erasing_a_stakeholder_erases_their_values_in_the_audit_and_the_document(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2025-01-10")).plan_id
    person = app.add_record(
        plan_id,
        "stakeholder",
        {"name": "Jo Bloggs", "email": "jo@example.com", "title": "CTO"},
        ctx=at("2025-01-11"),
    ).record_id
    assert person is not None
    app.change_record(
        plan_id, "stakeholder", person, {"name": "Joanna Bloggs"}, ctx=at("2025-01-12")
    )
    app.change_record(
        plan_id, "stakeholder", person, {"title": "CIO"}, ctx=at("2025-01-13")
    )
    runner.catch_up()
    assert "Joanna" in json.dumps(queries.audit_by_plan(store, plan_id).items)

    app.erase_stakeholder(plan_id, person, ctx=at("2025-02-01"))
    runner.catch_up()

    audit = queries.audit_by_plan(store, plan_id).items
    assert "Bloggs" not in json.dumps(audit) and "jo@" not in json.dumps(audit)
    added = audit[1]["changes"]
    assert {c["field"]: c["after"] for c in added}["name"] == ERASED
    assert {c["field"]: c["after"] for c in added}["title"] == "CTO"
    document = queries.plan_document(store, plan_id)
    assert document is not None
    (shown,) = document["sections"]["profile"]["stakeholders"]
    assert (shown["name"], shown["title"]) == (ERASED, "CIO")
    assert_read_models_match_replay(app, store)

    kept = dump_read_models(store)
    runner.rebuild()
    assert dump_read_models(store) == kept


# Lists, overdue dates and the portfolio.


def test_plans_are_listed_by_partner_and_filtered_by_every_field_given(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    ids = {}
    for partner, owner, total in (
        ("Alpha", "alice", 30),
        ("Bravo", "bob", 25),
        ("Charlie", "alice", 15),
        ("Delta", "bob", 29),
    ):
        ids[partner] = plan_id = app.open_plan(
            partner, owner=owner, ctx=at("2025-01-10")
        ).plan_id
        app.rate_indicators(plan_id, "2025-Q1", ratings(total), ctx=at("2025-03-01"))
    app.open_plan("Echo", owner="carol", ctx=at("2025-01-10"))
    app.archive_plan(ids["Delta"], ctx=at("2025-03-02"))
    runner.catch_up()

    def partners(**filters: Any) -> list[str]:
        return [i["partner"] for i in queries.list_plans(store, **filters).items]

    assert partners() == ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    assert partners(owner="alice") == ["Alpha", "Charlie"]
    assert partners(band="strong") == ["Alpha", "Delta"]
    assert partners(band="strong", status="active") == ["Alpha"]
    assert partners(band="intervention", owner="alice") == ["Charlie"]
    assert partners(trajectory="new", owner="bob") == ["Bravo", "Delta"]
    assert partners(status="archived") == ["Delta"]

    page = queries.list_plans(store, offset=2, limit=2)
    assert [i["partner"] for i in page.items] == ["Charlie", "Delta"]
    assert page.total == 5
    with pytest.raises(queries.QueryError):
        queries.list_plans(store, limit=0)


def test_review_and_action_overdue_are_decided_against_the_given_day(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    reviewed = app.open_plan("Reviewed", ctx=at("2025-01-10")).plan_id
    app.record_review(reviewed, reviewed_on=date(2025, 2, 1), ctx=at("2025-02-01"))
    never = app.open_plan("Never reviewed", ctx=at("2025-02-20")).plan_id
    initiative = app.add_record(
        reviewed,
        "initiative",
        {"title": "Enablement", "quarter": "2025-Q1"},
        ctx=at("2025-02-02"),
    ).record_id
    for due, status in (("2025-02-10", "open"), ("2025-02-11", "done")):
        app.add_record(
            reviewed,
            "action",
            {
                "initiative_id": initiative,
                "description": "Train",
                "due_date": due,
                "status": status,
            },
            ctx=at("2025-02-02"),
        )
    app.add_record(
        reviewed,
        "action",
        {"initiative_id": initiative, "description": "Demo", "due_date": "2025-04-01"},
        ctx=at("2025-02-02"),
    )
    runner.catch_up()

    def overdue(today: date) -> list[str]:
        return [
            i["partner"]
            for i in queries.list_plans(store, review_overdue=True, today=today).items
        ]

    assert overdue(date(2025, 3, 4)) == []
    assert overdue(date(2025, 3, 5)) == ["Reviewed"]
    assert overdue(date(2025, 3, 24)) == ["Never reviewed", "Reviewed"]
    on_time = queries.list_plans(store, review_overdue=False, today=date(2025, 3, 5))
    assert [i["plan_id"] for i in on_time.items] == [str(never)]

    item = queries.list_plans(store, owner="alice", today=date(2025, 3, 5)).items[1]
    assert item["partner"] == "Reviewed"
    assert (item["open_initiatives"], item["open_actions"]) == (1, 2)
    assert (item["overdue_actions"], item["next_action_due"]) == (1, "2025-02-10")
    assert item["last_review_on"] == "2025-02-01"
    later = queries.list_plans(store, owner="alice", today=date(2025, 4, 2)).items[1]
    assert later["overdue_actions"] == 2


def test_the_portfolio_shows_patterns_across_active_plans(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    def plan(partner: str, totals: list[int], barrier: str, threats: list[str]) -> UUID:
        plan_id = app.open_plan(partner, ctx=at("2025-01-10")).plan_id
        for number, total in enumerate(totals, start=1):
            app.rate_indicators(
                plan_id,
                f"2025-Q{number}",
                ratings(total),
                ctx=at(f"2025-0{3 * number}-10"),
            )
        app.add_record(
            plan_id, "barrier", {"description": barrier}, ctx=at("2025-09-11")
        )
        app.edit_section(
            plan_id, "market_demand", {"threats": threats}, ctx=at("2025-09-11")
        )
        app.add_record(
            plan_id,
            "opportunity",
            {
                "name": "Fleet",
                "kind": "deal",
                "stage": "proposal",
                "value": "1000.00",
                "probability": 25,
            },
            ctx=at("2025-09-12"),
        )
        return plan_id

    plan("Alpha", [30, 27, 24], "Price too high", ["Cheap rivals"])
    plan("Bravo", [25, 25, 25], "price, too HIGH!", ["Cheap  rivals", "Cloud shift"])
    charlie = plan("Charlie", [20, 25], "Training gaps", ["Cloud shift"])
    archived = plan("Delta", [30, 20], "Price too high", ["Cheap rivals"])
    app.record_review(charlie, reviewed_on=date(2025, 9, 12), ctx=at("2025-09-12"))
    app.archive_plan(archived, ctx=at("2025-09-13"))
    runner.catch_up()

    report = queries.portfolio(store, today=date(2025, 10, 1))

    assert report["plans"] == 3
    assert report["bands"] == {"healthy": 3}
    assert report["trajectories"] == {"declining": 1, "improving": 1, "stable": 1}
    assert [(d["partner"], d["declining_quarters"]) for d in report["declining"]] == [
        ("Alpha", 2)
    ]
    assert [
        (c["kind"], c["normalized"], c["partners"])
        for c in report["recurring_concerns"]
    ] == [
        ("barrier", "price too high", 2),
        ("threat", "cheap rivals", 2),
        ("threat", "cloud shift", 2),
    ]
    assert report["pipeline"] == {
        "open_value": "3000.00",
        "weighted_forecast": "750.00",
        "active_opportunities": 3,
    }
    assert [p["partner"] for p in report["review_overdue"]] == ["Alpha", "Bravo"]
    assert report["review_overdue"][0]["days_since"] == 264


def test_audit_answers_what_an_actor_did_between_two_instants(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    first = app.open_plan("Alpha", ctx=at("2025-01-10")).plan_id
    second = app.open_plan("Bravo", ctx=at("2025-01-10", actor="bob")).plan_id
    for day in ("2025-02-01", "2025-03-01", "2025-04-01"):
        app.edit_section(
            first, "goals", {"summary": day}, ctx=at(day, actor="bob", reason="QBR")
        )
        app.edit_section(second, "goals", {"summary": day}, ctx=at(day))
    runner.catch_up()

    page = queries.audit_by_actor(
        store,
        "bob",
        since=datetime(2025, 2, 1, 12, tzinfo=UTC),
        until=datetime(2025, 4, 1, 12, tzinfo=UTC),
    )

    assert page.total == 2
    assert [(i["plan_id"], i["recorded_at"]) for i in page.items] == [
        (str(first), "2025-02-01T12:00:00Z"),
        (str(first), "2025-03-01T12:00:00Z"),
    ]
    assert page.items[0]["changes"] == [
        {"field": "summary", "before": None, "after": "2025-02-01"}
    ]
    assert page.items[0]["reason"] == "QBR"
    assert queries.audit_by_actor(store, "bob").total == 4
    by_plan = queries.audit_by_plan(store, second, section="goals", limit=2)
    assert (by_plan.total, len(by_plan.items)) == (3, 2)


# Running, status, waiting and rebuilding.


def test_status_reports_the_lag_and_wait_for_returns_once_reached(
    app: AccountPlans, runner: ProjectionRunner
) -> None:
    runner.setup()
    plan_id = app.open_plan("Alpha", ctx=at("2025-01-10")).plan_id
    outcome = app.edit_section(
        plan_id, "goals", {"summary": "Grow"}, ctx=at("2025-01-11")
    )
    assert outcome.position is not None

    assert {(s.name, s.position, s.lag) for s in runner.status()} == {
        (name, 0, outcome.position)
        for name in ("current_plans", "scores", "audit", "portfolio")
    }
    assert not runner.wait_for(outcome.position, timeout=0.05)

    background = runner.start_in_background(poll_interval=0.05)
    try:
        assert runner.wait_for(outcome.position, timeout=10)
        later = app.edit_section(
            plan_id, "goals", {"summary": "Grow more"}, ctx=at("2025-01-12")
        )
        assert runner.wait_for(later.position, timeout=10, names=["current_plans"])
    finally:
        background.stop()
    assert not background.thread.is_alive()
    assert all(s.lag == 0 for s in runner.status())
    assert runner.wait_for(None, timeout=0)


def test_a_projection_advances_past_events_it_does_not_care_about(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plan_id = app.open_plan("Alpha", ctx=at("2025-01-10")).plan_id
    last = app.edit_section(plan_id, "goals", {"summary": "Grow"}, ctx=at("2025-01-11"))
    runner.catch_up()

    status = {s.name: s for s in runner.status()}
    assert status["portfolio"].position == status["scores"].position == last.position
    assert all_rows(store, "soh_read_concerns", "plan_id") == []
    assert all_rows(store, "soh_read_scores", "plan_id") == []


def test_a_rebuild_is_built_aside_while_the_old_rows_stay_readable(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    for number in range(12):
        app.open_plan(f"Partner {number:02}", ctx=at("2025-01-10"))
    runner.catch_up()
    before = dump_read_models(store)
    seen_during: list[int] = []

    def progress(events: int, head: int) -> None:
        # Reads go on against the old tables while the new ones fill.
        seen_during.append(queries.list_plans(store).total)
        assert head == 12

    report = runner.rebuild("current_plans", progress=progress)

    assert seen_during == [12, 12]
    assert (report.names, report.events) == (("current_plans",), 12)
    assert report.events_per_second > 0
    assert dump_read_models(store) == before
    positions = all_rows(store, "soh_projection_positions", "name")
    assert [p["name"] for p in positions] == sorted(
        ["current_plans", "scores", "audit", "portfolio"]
    )
    runner.rebuild("current_plans")
    assert dump_read_models(store) == before
    with pytest.raises(KeyError):
        runner.rebuild("nothing")


def test_runners_racing_on_one_store_apply_each_event_once(
    app: AccountPlans, store: ReadStore
) -> None:
    plans = [app.open_plan(f"P{n}", ctx=at("2025-01-10")).plan_id for n in range(4)]
    for day in range(1, 21):
        for plan_id in plans:
            app.edit_section(
                plan_id,
                "goals",
                {"summary": f"step {day}"},
                ctx=at(f"2025-02-{day:02}"),
            )
    runners = [
        ProjectionRunner(app, default_projections(), batch_size=5) for _ in range(3)
    ]
    runners[0].setup()
    errors: list[BaseException] = []

    def work(runner: ProjectionRunner) -> None:
        try:
            runner.catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert_read_models_match_replay(app, store)


def test_an_idle_worker_on_postgresql_wakes_when_events_are_written(
    postgres_settings: Settings,
) -> None:
    app = AccountPlans(postgres_settings)
    runner = ProjectionRunner(app, default_projections())
    background = runner.start_in_background(poll_interval=30)
    try:
        first = app.open_plan("Alpha", ctx=at("2025-01-10"))
        assert runner.wait_for(first.position, timeout=10)
        time.sleep(0.2)
        started = time.monotonic()
        later = app.edit_section(
            first.plan_id, "goals", {"summary": "Grow"}, ctx=at("2025-01-11")
        )
        assert runner.wait_for(later.position, timeout=5)
        assert time.monotonic() - started < 5
    finally:
        background.stop()
        app.close()


def test_a_rebuild_while_a_worker_keeps_projecting_ends_equal_to_the_replay(
    app: AccountPlans, runner: ProjectionRunner, store: ReadStore
) -> None:
    plans = [app.open_plan(f"P{n}", ctx=at("2025-01-10")).plan_id for n in range(3)]
    background = runner.start_in_background(poll_interval=0.01)
    rebuilder = ProjectionRunner(app, default_projections(), batch_size=5)
    try:
        last = None
        for day in range(1, 16):
            for plan_id in plans:
                last = app.edit_section(
                    plan_id,
                    "goals",
                    {"summary": f"step {day}"},
                    ctx=at(f"2025-02-{day:02}"),
                )
            if day == 5:
                rebuilder.rebuild()
        rebuilder.rebuild("audit")
        assert last is not None
        assert runner.wait_for(last.position, timeout=20)
    finally:
        background.stop()
    assert background.thread.is_alive() is False
    assert_read_models_match_replay(app, store)

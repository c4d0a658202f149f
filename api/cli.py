"""The ``soh`` command: serve, manage users and tokens, demo, verify, move data."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from api import create_app
from soh_es.application import AccountPlans
from soh_es.errors import SohError
from soh_es.identity import Identities, Role
from soh_es.logs import LogSettings, configure_logging
from soh_es.settings import Settings

logger = logging.getLogger(__name__)

FIRST_ADMIN = "admin"
PROJECTIONS = "projections"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == [PROJECTIONS]:
        # Handed on whole, options included, to the projections command.
        from projections.cli import main as projections_main

        return projections_main(arguments[1:], prog=f"soh {PROJECTIONS}")
    parser = _parser()
    args = parser.parse_args(arguments)
    try:
        configure_logging(LogSettings.from_env())
        status: int = args.run(args)
    except SohError as error:
        print(f"soh: {error}", file=sys.stderr)
        return 1
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soh",
        description="Account plans and Share of Heart scorecards. The store is "
        "named by SOH_DATABASE_URL (default: SQLite in SOH_DATA_DIR, ./data).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (development server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    commands.add_parser(
        PROJECTIONS,
        help="keep the read models: run | rebuild [NAME] | status "
        f"(see soh {PROJECTIONS} --help)",
        add_help=False,
    )

    users = commands.add_parser("users", help="add and list users").add_subparsers(
        required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="add a user with a role")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--plan", type=UUID, help="the plan a partner user may read")
    add.set_defaults(run=_add_user)
    listing = users.add_parser("list", help="list users")
    listing.set_defaults(run=_list_users)

    tokens = commands.add_parser("tokens", help="create and revoke tokens")
    token_actions = tokens.add_subparsers(required=True, metavar="ACTION")
    create = token_actions.add_parser("create", help="create a token, shown once")
    create.add_argument("user")
    create.set_defaults(run=_create_token)
    tokens_list = token_actions.add_parser("list", help="list tokens")
    tokens_list.add_argument("user", nargs="?")
    tokens_list.set_defaults(run=_list_tokens)
    revoke = token_actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.set_defaults(run=_revoke_token)

    demo = commands.add_parser("demo", help="load a demo portfolio of four plans")
    demo.set_defaults(run=_demo)

    init = commands.add_parser("init", help="create the tables, then exit")
    init.set_defaults(run=_init)

    verify = commands.add_parser(
        "verify", help="walk the hash chains; exit 1 if any does not verify"
    )
    verify.add_argument("plan", nargs="?", type=UUID)
    verify.set_defaults(run=_verify)

    export = commands.add_parser(
        "export", help="write the event log (or one plan's) as JSON lines"
    )
    export.add_argument("--plan", type=UUID)
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.add_argument(
        "--keys", type=Path, help="also write the stakeholder keys to this file"
    )
    export.set_defaults(run=_export)

    load = commands.add_parser(
        "import", help="load an export into an empty store, ids and times kept"
    )
    load.add_argument("file", type=Path)
    load.add_argument("--keys", type=Path, help="stakeholder keys from an export")
    load.set_defaults(run=_import)
    return parser


def _identities() -> tuple[AccountPlans, Identities]:
    settings = Settings.from_env()
    plans = AccountPlans(settings)
    identities = Identities.of(plans)
    if settings.create_tables:
        identities.create_tables()
    return plans, identities


def ensure_first_admin(identities: Identities) -> str | None:
    """Creates the first admin and returns its token when there are no users."""
    if identities.has_users():
        return None
    identities.add_user(FIRST_ADMIN, Role.ADMIN)
    _, secret = identities.create_token(FIRST_ADMIN)
    return secret


def _serve(args: argparse.Namespace) -> int:
    app = create_app(Settings.from_env())
    secret = ensure_first_admin(app.extensions["soh"].identities)
    if secret is not None:
        print(
            f"First start: created the user {FIRST_ADMIN!r} (role admin). Its token "
            f"is shown only this once:\n\n    {secret}\n\nUse it as "
            "'Authorization: Bearer <token>'; create more with 'soh tokens create'.",
            flush=True,
        )
    print(f"Serving on http://{args.host}:{args.port} (API page: /docs)", flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return 0


def _add_user(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    if args.plan is not None:
        plans.get_plan(args.plan)
    user = identities.add_user(args.name, args.role, args.plan)
    print(f"Added {user.name} ({user.role.value}).")
    plans.close()
    return 0


def _list_users(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    for user in identities.users():
        bound = "" if user.plan_id is None else f" plan {user.plan_id}"
        print(f"{user.name}\t{user.role.value}{bound}")
    plans.close()
    return 0


def _create_token(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    token, secret = identities.create_token(args.user)
    print(
        f"Token {token.token_id} for {token.user_name}, shown only once:",
        file=sys.stderr,
    )
    print(secret)
    plans.close()
    return 0


def _list_tokens(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    for token in identities.tokens(args.user):
        state = "active" if token.revoked_at is None else "revoked"
        print(f"{token.token_id}\t{token.user_name}\t{state}")
    plans.close()
    return 0


def _revoke_token(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    token = identities.revoke_token(args.token_id)
    print(f"Revoked token {token.token_id} of {token.user_name}.")
    plans.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from soh_es.demo import PARTNERS, load_demo

    plans, _ = _identities()
    opened = load_demo(plans)
    print(f"Loaded {len(opened)} of {len(PARTNERS)} demo plans:")
    for plan_id in plans.plan_ids():
        plan = plans.get_plan(plan_id)
        print(f"  {plan_id}  {plan.partner} (owner {plan.owner})")
    plans.close()
    return 0


def _init(args: argparse.Namespace) -> int:
    plans, identities = _identities()
    identities.create_tables()
    plans.close()
    print("The tables are ready.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    plans, _ = _identities()
    reports = plans.verify(args.plan)
    for report in reports:
        if report.intact:
            print(f"{report.originator_id}\tintact\t{report.events} events")
        else:
            print(
                f"{report.originator_id}\tBROKEN at version "
                f"{report.first_bad_version}: {report.problem}"
            )
    plans.close()
    return 0 if all(r.intact for r in reports) else 1


def _export(args: argparse.Namespace) -> int:
    plans, _ = _identities()
    out = sys.stdout if args.output is None else args.output.open("w")
    count = 0
    try:
        for line in plans.export(args.plan):
            out.write(line + "\n")
            count += 1
    finally:
        if args.output is not None:
            out.close()
    if args.keys is not None:
        args.keys.write_text(json.dumps(plans.export_keys(), indent=1))
        args.keys.chmod(0o600)
    print(f"Exported {count} events.", file=sys.stderr)
    plans.close()
    return 0


def _import(args: argparse.Namespace) -> int:
    plans, _ = _identities()
    keys = None if args.keys is None else json.loads(args.keys.read_text())
    with args.file.open() as lines:
        count = plans.import_lines(lines, keys=keys)
    print(f"Imported {count} events.", file=sys.stderr)
    plans.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

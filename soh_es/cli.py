"""The ``soh`` command: serve the API, manage users and tokens, load the demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from uuid import UUID

from soh_es.application import AccountPlans
from soh_es.errors import SohError
from soh_es.identity import Identities, Role
from soh_es.settings import Settings

logger = logging.getLogger(__name__)

FIRST_ADMIN = "admin"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
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
    # The API is imported here so that the write side never depends on Flask.
    from api import create_app

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


if __name__ == "__main__":
    sys.exit(main())

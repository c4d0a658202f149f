"""The projections command: run the worker, rebuild read models, show their status."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from projections import default_projections
from projections.runner import DEFAULT_BATCH_SIZE, ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.errors import SohError
from soh_es.logs import LogSettings, configure_logging
from soh_es.settings import Settings

logger = logging.getLogger(__name__)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Keeps the read models.")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="events applied per transaction (default %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="apply new events until stopped")
    run.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between polls when idle (default %(default)s)",
    )
    run.add_argument(
        "--until-idle",
        action="store_true",
        help="stop once every projection has reached the head",
    )
    rebuild = commands.add_parser("rebuild", help="rebuild read models from zero")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")
    commands.add_parser("status", help="show positions and lag")
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str = "python -m projections"
) -> int:
    """Runs the command line; returns the exit status.

    ``prog`` names the command in help and errors: ``soh projections`` runs
    this same command line.
    """
    args = _parser(prog).parse_args(argv)
    try:
        configure_logging(LogSettings.from_env())
        app = AccountPlans(Settings.from_env())
    except SohError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    try:
        runner = ProjectionRunner(
            app, default_projections(), batch_size=args.batch_size
        )
        if args.command == "run":
            return _run(runner, args.poll_interval, args.until_idle)
        if args.command == "rebuild":
            return _rebuild(runner, args.name)
        return _status(runner)
    finally:
        app.close()


def _run(runner: ProjectionRunner, poll_interval: float, until_idle: bool) -> int:
    if until_idle:
        runner.catch_up()
        return 0
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("Stopping on signal %s", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runner.run_forever(stop, poll_interval=poll_interval)
    return 0


def _rebuild(runner: ProjectionRunner, name: str | None) -> int:
    if name is not None:
        try:
            runner.projection(name)
        except KeyError as error:
            print(error.args[0], file=sys.stderr)
            return 2

    def progress(events: int, head: int) -> None:
        print(f"\r{events}/{head} events", end="", file=sys.stderr, flush=True)

    report = runner.rebuild(name, progress=progress)
    print(
        f"\nRebuilt {', '.join(report.names)}: {report.events} events in "
        f"{report.seconds:.2f}s ({report.events_per_second:.0f} events/s)",
        file=sys.stderr,
    )
    return 0


def _status(runner: ProjectionRunner) -> int:
    print(f"{'projection':<16}{'position':>10}{'head':>10}{'lag':>10}")
    for status in runner.status():
        print(
            f"{status.name:<16}{status.position:>10}{status.head:>10}{status.lag:>10}"
        )
    return 0

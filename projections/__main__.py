"""Runs ``python -m projections``."""

from projections.cli import main

raise SystemExit(main())

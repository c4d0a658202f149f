"""The exceptions the write side raises, under one root."""

from __future__ import annotations


class SohError(Exception):
    """Root of every error that soh-es raises on purpose."""


class ValidationError(SohError):
    """Raised when a command carries a value the domain does not accept.

    ``field`` names the offending field with dots for nesting (for example
    ``ratings.seeks_input``) so that callers can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotFoundError(SohError):
    """Raised when a plan, a child record or a point in a plan's past is unknown."""


class StaleVersionError(SohError):
    """Raised when a command expected a plan version that is no longer current."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"The plan is at version {actual}, not the expected version {expected}; "
            "read it again and retry the change on the current version."
        )
        self.expected = expected
        self.actual = actual


class ConflictError(SohError):
    """Raised when a command does not fit the plan's current state.

    For example editing an archived plan or launching a sixth initiative in a
    quarter.
    """


class StoreUnavailableError(SohError):
    """Raised when the database cannot be reached; the command wrote nothing."""

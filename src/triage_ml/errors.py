"""Every error triage-ml raises on purpose. Each message names what went wrong and how to fix it.

HTTP status codes and exit codes are chosen at the edges (CLI, API), never here.
"""

from __future__ import annotations


class TriageError(Exception):
    """Base class: a problem the user can fix, reported as one line without a traceback."""


class DataValidationError(TriageError, ValueError):
    """A data file or table does not follow the labeled-message contract."""

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None, more: int = 0) -> None:
        self.source, self.row, self.column, self.more = source, row, column, more
        where = []
        if source:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        suffix = f" (and {more} more problem{'s' if more != 1 else ''} in this file)" if more else ""
        super().__init__(f"{prefix}: {message}{suffix}" if prefix else f"{message}{suffix}")


class UnsupportedFormatError(TriageError, ValueError):
    """A file whose extension is not one we read or write."""


class ConfigError(TriageError, ValueError):
    """A training config or setting has a value we refuse."""


class NotFittedError(TriageError, AttributeError):
    """A model or head was used before ``fit``."""


class ModelNotFoundError(TriageError, LookupError):
    """No registered model (or alias) where one was expected."""


class EncoderNotFoundError(TriageError, LookupError):
    """The configured sentence encoder is neither a local folder nor an installed offline package."""


class StoreUnavailableError(TriageError, ConnectionError):
    """The label store cannot be reached; the API answers 503 and nothing is written."""


class NotFoundError(TriageError, LookupError):
    """A message or dispute the request names does not exist (404)."""


class ConflictError(TriageError):
    """The request contradicts what the store holds: an event id reused for another event, a dispute
    resolved twice (409)."""


class KeyRequestError(TriageError, ValueError):
    """A personal API key asked for with a role we do not know or a name that is not a plain handle (422)."""


class ReviewUnavailableError(TriageError, ConnectionError):
    """Label Studio cannot be reached, refuses the token or refuses a request; nothing was marked pushed or
    resolved."""


class ForbiddenError(TriageError, PermissionError):
    """The caller may not do this to this item, whatever their role allows elsewhere: e.g. approving one's own
    draft (403)."""

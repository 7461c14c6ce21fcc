"""Logs that never carry request data: tracebacks keep their frames but lose every exception's message.

An exception's message is where request data hides: SQLAlchemy's `[parameters: ...]`, a driver's
`DETAIL: Key (user_id)=(...)`, a validation error quoting its input. The filter here rewrites every
record that passes through it: the traceback keeps its files, lines and exception types (what an
operator needs to find the bug), and each message becomes "(message withheld)". Arguments of a
record that are exceptions are replaced by their type's name the same way.
"""

from __future__ import annotations

import copy
import logging
import traceback
from types import TracebackType
from typing import Any

from uvicorn.config import LOGGING_CONFIG

WITHHELD = "(message withheld: it may hold request data)"
# Loggers that can print an exception raised while serving: uvicorn's, the event loop's, SQLAlchemy's,
# ours, and the root. A logger's filter sees only the records logged to it by name, not its children's:
# `uvicorn_log_config` puts the filter on the handlers too, which see every record.
SERVER_LOGGERS = (
    "",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "asyncio",
    "sqlalchemy",
    "sqlalchemy.pool",
    "shopkeeper",
    "shopkeeper.api",
)


class RedactingFilter(logging.Filter):
    """Rewrites each record's traceback and exception arguments so that no message text survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
            record.exc_info = None
        if record.args:
            if isinstance(record.args, dict):
                record.args = {key: _redacted_argument(value) for key, value in record.args.items()}
            else:
                record.args = tuple(_redacted_argument(value) for value in record.args)
        return True


def _redacted_argument(value: Any) -> Any:
    return _name(type(value)) + ": " + WITHHELD if isinstance(value, BaseException) else value


def redacted_traceback(error: BaseException) -> str:
    """The traceback of `error` and of the exceptions it was raised from, each message withheld."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    chain.reverse()  # the oldest first, as Python prints them
    parts: list[str] = []
    for older, newer in zip(chain, [*chain[1:], None], strict=True):
        parts.append(_one(older.__traceback__, type(older)))
        if newer is not None:
            parts.append(_CAUSE if newer.__cause__ is older else _CONTEXT)
    return "".join(parts).rstrip("\n")


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _one(frames: TracebackType | None, kind: type[BaseException]) -> str:
    listed = "".join(traceback.format_tb(frames)) if frames is not None else ""
    return f"Traceback (most recent call last):\n{listed}{_name(kind)}: {WITHHELD}\n"


def _name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def install_log_redaction() -> None:
    """Add the filter to the loggers that a server's errors go through (once each; idempotent).

    A filter on a logger survives `logging.config.dictConfig` (uvicorn's), which replaces handlers only.
    """
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging setup, with the filter on its handlers too (records of any logger that
    reach them, such as the event loop's, are rewritten)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "shopkeeper.api.logs.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    # Records of other loggers (SQLAlchemy's pool, ours) go to the same filtered handler, not to
    # Python's last-resort one, which has no filter.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config

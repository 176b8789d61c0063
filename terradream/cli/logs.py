"""Quiet-by-default structured logging: one `key=value` line per record on stderr."""

from __future__ import annotations

import logging
import sys
import time

# Attributes every LogRecord has; anything else on a record came from `extra=` and is printed as a field.
_STANDARD_ATTRS = (frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
                   | {"message", "asctime", "color_message"})


def format_value(value: object) -> str:
    """A value as a logfmt token: bare when it has no spaces, quotes or '=', else double-quoted."""
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class KeyValueFormatter(logging.Formatter):
    """Formats records as `ts=... level=... logger=... msg=... key=value ...` (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        """One logfmt line, with extra fields and any exception appended."""
        fields: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        line = " ".join(f"{k}={format_value(v)}" for k, v in fields.items())
        if record.exc_info:
            line += " exc=" + format_value(self.formatException(record.exc_info))
        return line


def configure_logging(level: str = "warning") -> None:
    """Route terradream's and uvicorn's loggers through one logfmt handler on stderr at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    for name in ("terradream", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler] if name in ("terradream", "uvicorn") else []
        logger.propagate = name not in ("terradream", "uvicorn")
        logger.setLevel(level.upper())

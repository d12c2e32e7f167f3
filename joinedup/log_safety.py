"""Keep personal data out of third-party libraries' debug logs.

Two libraries JoinedUp uses write what they carry when their loggers are turned up to DEBUG,
as an engineer chasing a fault will do: zeep logs every SOAP envelope (names, dates of birth,
NI numbers of a whole page of tenants) and SQLAlchemy logs bound parameters and fetched rows.
A filter on those loggers keeps the message (what happened, to which address or statement)
and drops the payload. Filters sit on the logger itself, so they hold whatever level or
handler the deployment configures. SQLAlchemy's own ``hide_parameters`` (set in
:mod:`joinedup.mci.store`) keeps parameters out of exception messages too.
"""
from __future__ import annotations

import logging
import re

HIDDEN = "<not logged: may hold personal data>"

# logger name -> what a record of it may say
PAYLOAD_LOGGERS = ("zeep.transports", "sqlalchemy.engine.Engine", "sqlalchemy.engine")


_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa]")


class DropPayload(logging.Filter):
    """Keep a record's message template, replace its arguments (the payload) with a marker."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            count = len(_SPEC.findall(str(record.msg)))
            record.msg = _SPEC.sub("%s", str(record.msg))  # every argument becomes text
            if record.name == "zeep.transports" and args:
                # "HTTP Post to %s:\n%s": the address is useful, the envelope is not
                record.args = (str(args[0]),) + (HIDDEN,) * (count - 1)
            else:
                record.args = (HIDDEN,) * count
        return True


_FILTER = DropPayload()


def install() -> None:
    """Attach the filter to every payload-carrying logger (idempotent)."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

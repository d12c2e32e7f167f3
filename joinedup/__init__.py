"""JoinedUp: a back-office integration hub and master citizen index for UK councils."""

__version__ = "0.1.0"

from joinedup import log_safety as _log_safety  # noqa: E402 - third-party debug logs carry no personal data

_log_safety.install()

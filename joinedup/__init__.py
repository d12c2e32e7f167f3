"""JoinedUp: a back-office integration hub and master citizen index for UK councils."""

__version__ = "0.1.0"

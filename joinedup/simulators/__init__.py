"""The synthetic council: a seeded population with a known truth, and its four systems' records.

Public API (see each module's docstring for the why):
- ``generate_population(n, seed)`` -> residents (population.py)
- ``build_council(n, seed, noise, night)`` -> Council; ``write_council(out_dir, ...)`` (council.py)
- ``NoiseConfig`` (noise.py), ``NightlyChanges`` (council.py), ``RecordHistory`` (history.py:
  the closed records kept from before night 0, about 2.5 records per resident with ``full``)
"""
from joinedup.simulators.council import (
    BASE_NIGHT, KEY_FIELDS, SYSTEMS, TIMESTAMP_FIELDS, Council, NightlyChanges, build_council,
    night_datetime, write_council,
)
from joinedup.simulators.history import HISTORY_PROFILES, RecordHistory
from joinedup.simulators.noise import NoiseConfig
from joinedup.simulators.population import (
    BASE_DATE, Address, Household, Resident, generate_households, generate_population,
)

__all__ = [
    "BASE_DATE", "BASE_NIGHT", "HISTORY_PROFILES", "KEY_FIELDS", "SYSTEMS", "TIMESTAMP_FIELDS",
    "Address", "Council", "Household", "NightlyChanges", "NoiseConfig", "RecordHistory",
    "Resident", "build_council",
    "generate_households", "generate_population", "night_datetime", "write_council",
]

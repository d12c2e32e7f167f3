"""The match-feature columns: what ``joinedup.mci.standardise.standardise()`` writes, the
stored match index (``record_features``) holds, and the model (``model_settings``) reads.

Kept apart from the model's comparisons so that the table definitions in
``joinedup.mci.features`` can be imported without Splink: every night step registers every
table's model when it opens the MCI, and only the merge needs Splink.
"""
from __future__ import annotations

#: The match-feature columns the model reads (the standardise() contract).
FEATURE_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source_system",
    "source_key",
    "given_name_std",
    "given_name_roots",
    "given_initial",
    "middle_names_std",
    "family_name_std",
    "family_name_parts",
    "family_name_phonetic",
    "dob",
    "dob_year",
    "dob_is_placeholder",
    "sex",
    "ni_key",
    "nhs_number",
    "uprn",
    "postcode",
    "postcode_outward",
    "address_key",
    "email_std",
    "phone_std",
    "deceased",
)

#: Columns held as text in DuckDB (everything except these typed ones).
INTEGER_COLUMNS = ("record_id", "dob_year")
BOOLEAN_COLUMNS = ("dob_is_placeholder", "deceased")

UNIQUE_ID_COLUMN = "record_id"

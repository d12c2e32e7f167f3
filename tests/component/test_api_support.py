"""A small MCI for the API tests, built by the real staging and merge: William Smith in
revenues, housing, social care and HR; the Brown twins; a resident only social care knows."""
from __future__ import annotations

from typing import Any

CANONICAL_FIELDS = ("title", "given_name", "middle_names", "family_name", "previous_family_names", "date_of_birth",
                    "sex", "ni_number", "nhs_number", "uprn", "address_line_1", "address_line_2", "address_line_3",
                    "town", "postcode", "email", "phone", "deceased_date", "updated_at")


def person(system: str, key: str, **values: Any) -> dict[str, Any]:
    record = {f: None for f in CANONICAL_FIELDS}
    record.update(source_system=system, source_key=key, updated_at="2026-01-04T10:00:00")
    record.update(values)
    return record


WILLIAM = dict(given_name="William", family_name="Smith", date_of_birth="1961-04-03", sex="M",
               ni_number="AB123456C", uprn="100023336956", address_line_1="14 High Street", town="Cardiff",
               postcode="AB12 3DX")

RECORDS: dict[str, list[dict[str, Any]]] = {
    "revenues": [
        person("revenues", "500000001", **WILLIAM, email="bill@example.org"),
        person("revenues", "500000004", given_name="Amy", family_name="Brown", date_of_birth="1990-02-01",
               uprn="100023336958", address_line_1="3 Church Road", town="Newport", postcode="NP20 1AB"),
        person("revenues", "500000006", given_name="Zoe", family_name="Brown", date_of_birth="1990-02-01",
               uprn="100023336958", address_line_1="3 Church Road", town="Newport", postcode="NP20 1AB"),
        person("revenues", "500000009", given_name="Margaret", family_name="O'Brien", date_of_birth="1944-08-07",
               ni_number="JK112233B", postcode="SA1 2BB", address_line_1="22 Park Avenue", town="Swansea"),
    ],
    "housing": [person("housing", "HT000001", **WILLIAM, phone="02920871000")],
    "socialcare": [
        person("socialcare", "SC0000001", **WILLIAM, nhs_number="9434765919"),
        person("socialcare", "SC0000002", given_name="Gwenllian", family_name="Pryce", date_of_birth="1938-05-17",
               nhs_number="9876543210", postcode="CF10 1AA", address_line_1="2 Quay Street", town="Cardiff"),
    ],
    "hr": [person("hr", "E0000001", **WILLIAM)],
}


def build_index(run_id: str = "night-1") -> dict[str, Any]:
    """Stage the records (social care as special category) and merge, as a night does."""
    from joinedup.mci.staging import stage_records
    from joinedup.mci.store import session_factory
    from joinedup.pipeline import merge

    with session_factory()() as session:
        for system, records in RECORDS.items():
            stage_records(session, records, run_id, special_category=(system == "socialcare"))
        session.commit()
    return merge(run_id)

"""Address-line normalisation, flat/house extraction and the address key."""
from __future__ import annotations

import pytest

from joinedup.addresses import AddressParts, address_key, address_parts, normalise_address_line


@pytest.mark.parametrize("raw,expected", [
    ("Flat 2, 14 High St.", "FLAT 2 14 HIGH STREET"),
    ("St Mary's Road", "SAINT MARYS ROAD"),
    ("St Mary’s Rd", "SAINT MARYS ROAD"),  # curly apostrophe
    ("14 St Mary's Rd", "14 SAINT MARYS ROAD"),
    ("Upper St Giles St", "UPPER SAINT GILES STREET"),
    ("14 High St", "14 HIGH STREET"),
    ("High St North", "HIGH STREET NORTH"),
    ("Church St, Llanfair", "CHURCH STREET LLANFAIR"),
    ("12 Acacia Ave", "12 ACACIA AVENUE"),
    ("3 Mill Ln", "3 MILL LANE"),
    ("Apt 4B, Riverside Ct", "FLAT 4B RIVERSIDE COURT"),
    ("14 a Church Ave", "14A CHURCH AVENUE"),
    ("2 / 14 High St", "2/14 HIGH STREET"),
    ("Bryn Têg & Maes-y-Coed", "BRYN TEG AND MAES-Y-COED"),
    ("  ", None),
    (None, None),
])
def test_normalise_address_line(raw, expected):
    assert normalise_address_line(raw) == expected


@pytest.mark.parametrize("line", [
    "Flat 2, 14 High St",
    "2/14 High Street",
    "FLAT 2 14 HIGH STREET",
    "Apartment 2, 14 High Street.",
    "flat 2, 14, High St",
    "Fflat 2, 14 High Street",
])
def test_same_flat_written_differently_gives_same_parts(line):
    assert address_parts(line) == AddressParts("2", "14", "HIGH STREET")


def test_flat_on_first_line_and_street_on_second():
    assert address_parts("Flat 2", "14 High St") == AddressParts("2", "14", "HIGH STREET")
    assert address_parts("14", "High St") == AddressParts(None, "14", "HIGH STREET")


def test_building_name_dropped_when_a_number_follows():
    assert address_parts("Rose Cottage, 3 Mill Lane") == AddressParts(None, "3", "MILL LANE")
    assert address_parts("2 Riverside Court, 14 Mill Lane") == AddressParts("2", "14", "MILL LANE")


def test_named_house_and_ranges():
    assert address_parts("The Old Rectory", "Church Lane") == AddressParts(None, None, "OLD RECTORY")
    assert address_parts("14-16 Bridge St") == AddressParts(None, "14-16", "BRIDGE STREET")
    assert address_parts("Ground Floor Flat, 14 High St") == AddressParts("GROUND", "14", "HIGH STREET")
    assert address_parts(None) == AddressParts(None, None, None)


def test_address_key():
    a = address_key("Flat 2, 14 High St", None, "cf10 1ep")
    b = address_key("2/14 High Street", "Cathays", "CF10 1EP")
    assert a == b == "CF101EP|2|14|HIGH STREET"
    assert address_key("14 High St", None, "CF10 1EP") != a  # the house is not the flat
    assert address_key("14 High St", None, "not a postcode") == "||14|HIGH STREET"
    assert address_key(None, None, "CF10 1EP") == "CF101EP|||"
    assert address_key(None, None, None) is None
    assert address_key(None, None, "BFPO 105") is None
    assert address_key("14 High St", None, "ZZ99 3VZ") == "||14|HIGH STREET"

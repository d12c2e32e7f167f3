"""The XML drop adapter remembers the local name of each tag it has seen: the answer must be
QName's, every time, and a name lxml refuses must be refused every time (never remembered)."""
from __future__ import annotations

import pytest
from lxml import etree

from joinedup.adapters.xml_file import _local


@pytest.mark.parametrize("tag", ["Client", "{urn:council:socialcare}Client", "{}GivenName", "{urn:a}b.c-d_e"])
def test_local_name_is_qnames(tag: str) -> None:
    for _ in range(3):
        assert _local(tag) == etree.QName(tag).localname


def test_not_a_tag_has_no_local_name() -> None:
    assert _local(etree.Comment) == "" and _local(None) == ""


@pytest.mark.parametrize("tag", ["a:", "", "{urn:a}"])
def test_a_name_lxml_refuses_is_refused_every_time(tag: str) -> None:
    with pytest.raises(ValueError):
        etree.QName(tag)
    for _ in range(2):
        with pytest.raises(ValueError):
            _local(tag)

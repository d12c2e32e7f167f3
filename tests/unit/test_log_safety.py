"""Third-party debug logs keep what happened and drop what they carried."""
from __future__ import annotations

import logging

import pytest

import joinedup  # noqa: F401 - installs the filters
from joinedup.log_safety import HIDDEN


@pytest.mark.parametrize("name", ["sqlalchemy.engine.Engine", "zeep.transports"])
def test_payload_arguments_are_replaced_whatever_their_format(name: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger(name)
    with caplog.at_level(logging.DEBUG, logger=name):
        logger.debug("Post to %s: %r row %d at %.1f%%", "http://127.0.0.1:1/soap", ("SIÂN", "1961-04-03"), 7, 2.5)
    message = caplog.records[-1].getMessage()
    assert "SIÂN" not in message and "1961-04-03" not in message and HIDDEN in message
    assert message.startswith("Post to ") and message.endswith("%")
    if name == "zeep.transports":  # the address is no personal data and helps the engineer
        assert "http://127.0.0.1:1/soap" in message


def test_a_message_without_arguments_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        logging.getLogger("sqlalchemy.engine.Engine").info("SELECT source_records.id FROM source_records")
    assert caplog.records[-1].getMessage() == "SELECT source_records.id FROM source_records"

"""A council's own adapter package plugs in through the `joinedup.adapters` entry point group."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A real installed-looking distribution (dist-info with entry_points.txt) on sys.path."""
    (tmp_path / "council_plugin.py").write_text(
        "from joinedup.adapters.files import CsvAdapter\n"
        "class TabAdapter(CsvAdapter):\n"
        "    '''The council's tab-separated exports.'''\n"
    )
    dist = tmp_path / "council_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: council-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[joinedup.adapters]\ntabbed = council_plugin:TabAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from joinedup.adapters import registry

    registry._kinds.cache_clear()
    yield
    registry._kinds.cache_clear()
    sys.modules.pop("council_plugin", None)


def test_entry_point_kind_is_known_and_loads(plugin_package: None) -> None:
    from joinedup.adapters.registry import adapter_class, known_kinds

    assert "tabbed" in known_kinds() and "csv" in known_kinds()
    assert adapter_class("tabbed").__name__ == "TabAdapter"


def test_unknown_kind_lists_the_known_ones() -> None:
    from joinedup.adapters.registry import adapter_class

    with pytest.raises(ValueError, match=r"unknown adapter kind 'soapy'; known: csv, fixed_width, rest, soap, xml"):
        adapter_class("soapy")

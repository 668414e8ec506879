"""realtime.internals was read against exact versions: they are the ones pinned and installed."""

import re
from importlib.metadata import version
from pathlib import Path

from realtime.internals import WRITTEN_AGAINST

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def test_the_libraries_whose_internals_we_use_are_pinned_to_the_versions_we_read():
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", REQUIREMENTS.read_text(), re.M)
    )
    for package, read in WRITTEN_AGAINST.items():
        assert pins.get(package) == read, f"requirements.txt pins {package} {pins.get(package)}"
        assert version(package) == read, f"{package} {version(package)} is installed"

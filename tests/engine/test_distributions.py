"""The installed-distribution table code fingerprints use: exactly what the standard library builds, faster."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from forgeline.engine.distributions import packages_distributions

RECORDS = {
    # distribution folder: (METADATA text, RECORD text or None, top_level.txt text or None)
    "declared-1.0.dist-info": ("Metadata-Version: 2.1\nName: Declared_Pkg\nVersion: 1.0\n\nName: not a header\n",
                               "declared/__init__.py,,\n", "declared\nalso_declared\n"),
    "inferred-2.0.dist-info": ("Metadata-Version: 2.1\nname: Inferred\nVersion: 2.0\n",
                               'inferred/__init__.py,sha256=x,1\n"odd,name/mod.py",,\nsolo.py,,\n'
                               "./dotted/x.py,,\n/abs/y.py,,\nno_commas.py\n.py,,\nbin/tool,,\n"
                               "inferred-2.0.dist-info/RECORD,,\n", None),
    "shared-3.0.dist-info": ("Metadata-Version: 2.1\nName: shared-dist\nVersion: 3.0\n",
                             "inferred/extra.py,,\n", None),
    "datafiles-4.0.dist-info": ("Metadata-Version: 2.1\nName: datafiles\nVersion: 4.0\n",
                                "datafiles/data.json,,\n", None),
}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder, (metadata, record, top_level) in RECORDS.items():
        info = tmp_path / folder
        info.mkdir()
        (info / "METADATA").write_text(metadata)
        if record is not None:
            (info / "RECORD").write_text(record)
        if top_level is not None:
            (info / "top_level.txt").write_text(top_level)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_table_equals_the_standard_librarys_for_what_is_installed_here():
    assert packages_distributions() == dict(importlib.metadata.packages_distributions())


def test_the_table_equals_the_standard_librarys_for_unusual_records(site):
    ours = packages_distributions()

    assert ours == dict(importlib.metadata.packages_distributions())
    assert ours["declared"][0] == "Declared_Pkg" and ours["also_declared"][0] == "Declared_Pkg"
    assert ours["inferred"][:2] == ["Inferred", "shared-dist"]
    assert {"odd,name", "solo", "dotted", "no_commas"} <= set(ours)
    assert "datafiles" not in ours and "bin" not in ours

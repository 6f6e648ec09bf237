"""Writing a benchmark's figures into benchmarks/README.md between that benchmark's own markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).with_name("README.md")


def write_section(block: str, begin: str, end: str, heading: str = "", readme: Path = README) -> None:
    """Replace the text from ``begin`` to ``end`` (markers included in ``block``), or append ``heading`` + block."""
    text = readme.read_text() if readme.exists() else ""
    start, stop = text.find(begin), text.find(end)
    if start != -1 and stop > start:
        text = text[:start] + block + text[stop + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + (heading + "\n\n" if heading else "") + block + "\n"
    readme.write_text(text)

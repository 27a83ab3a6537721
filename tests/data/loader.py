"""Sample messages for tests: ``load_eml("plain_utf8.eml")`` gives the raw bytes."""

from __future__ import annotations

from pathlib import Path

EML_DIR = Path(__file__).resolve().parent / "eml"


def load_eml(name: str) -> bytes:
    """Return the raw bytes of one sample message in ``tests/data/eml``."""
    return (EML_DIR / name).read_bytes()


def eml_names() -> list[str]:
    """Return the file names of every sample message, sorted."""
    return sorted(path.name for path in EML_DIR.glob("*.eml"))

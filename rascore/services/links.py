"""Deep links: each page's stable path, and the query parameters that open a thing on it.

A page's path is its file's name (``pages/label.py`` -> ``/label``); the default page is also
served at ``/``. A thing is named by query parameters, checked here (a bad value gives one clear
line): ``/label?item=ID``, ``/adjudicate?item=ID``, ``/predict?item=ID&method=occlusion``,
``/dashboard?modality=SPD&cohort=test2``. Whether the user may open the thing is decided by the
service that serves it, exactly as for any other way of opening it (a link is only an address).
A link never carries a session token: the browser's cookie does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from urllib.parse import urlencode, urlsplit, urlunsplit

from rascore.permissions import PAGES, PageSpec


class LinkError(ValueError):
    """A link whose parameters name nothing this app knows, with a message for the page."""


def path_of(spec: PageSpec) -> str:
    """A page's stable path (without the leading slash)."""
    return PurePosixPath(spec.path).stem


def page_paths() -> dict[str, PageSpec]:
    """Every page by its path."""
    return {path_of(spec): spec for spec in PAGES}


def item_id(value: object) -> int:
    """The item number a link names (``12`` or ``#12``)."""
    text = str(value).strip().removeprefix("#")
    if not text.isdigit() or len(text) > 12:
        raise LinkError(f"This link names no item: {str(value)[:40]!r} is not an item number.")
    return int(text)


def choice(value: object, options: Iterable[str], what: str) -> str:
    """One of ``options`` (any letter case), or LinkError naming them."""
    known = {str(o).lower(): str(o) for o in options}
    found = known.get(str(value).strip().lower())
    if found is None:
        raise LinkError(
            f"This link names an unknown {what} {str(value)[:40]!r}; expected one of {', '.join(known.values())}."
        )
    return found


def share_url(current: str | None, path: str, params: Mapping[str, object]) -> str:
    """The link to this view: the page's address in the browser (``current``, from
    ``st.context.url``; None outside a browser gives ``/path``) with ``params`` as its query."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not current:
        return f"/{path}" + (f"?{query}" if query else "")
    parts = urlsplit(current)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

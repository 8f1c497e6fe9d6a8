"""The one check of an AppTest run: no uncaught exception and no error message on the page.

The pages catch what they raise and show it with ``st.error``, so ``at.exception`` alone stays
empty when a page fails; ``assert_page_ok`` looks at both and prints what it found."""

from __future__ import annotations

import re
from collections.abc import Iterable

from streamlit.testing.v1 import AppTest


def assert_page_ok(at: AppTest, expected_errors: Iterable[str] = ()) -> None:
    """Fail on an uncaught exception, or on an ``st.error`` not matched by ``expected_errors``.

    ``expected_errors``: text each error the test means to provoke contains, one per error, in
    the order the page shows them (an expected error that does not appear fails too)."""
    problems = [f"exception: {e.value}\n{''.join(e.stack_trace)}" for e in at.exception]
    errors = [str(e.value) for e in at.error]
    expected = list(expected_errors)
    matched = len(errors) == len(expected) and all(want in got for want, got in zip(expected, errors))
    if not matched:
        problems += [f"st.error: {text}" for text in errors]
        if expected:
            problems.append(f"expected errors: {expected}")
    assert not problems, "the page failed:\n" + "\n".join(problems)


TEXT_KINDS = (
    "error",
    "warning",
    "success",
    "info",
    "markdown",
    "text",
    "caption",
    "title",
    "subheader",
    "header",
    "toast",
)


def texts(at: AppTest) -> str:
    """Every message and text on the page, markdown escapes removed (as the browser shows it)."""
    parts = [e.value for kind in TEXT_KINDS for e in getattr(at, kind)]
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))

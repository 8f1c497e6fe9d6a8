"""One gate for the tests that need a real Orthanc (tests/test_pacs.py, tests/e2e/test_admin_pacs.py).

``make test`` installs Orthanc and its DICOMweb plugin when run as root, so under root a missing
server is a failure. A user who is not root cannot have had it installed by ``make test``; for
them the tests are skipped with the reason and the command that would install it.
"""

from __future__ import annotations

import os

import pytest

from rascore.pacs import orthanc_local


def need_orthanc() -> None:
    """Fail (root) or skip (not root) with the reason when Orthanc or its plugin is missing."""
    problem = orthanc_local.installed()
    if not problem:
        return
    if os.geteuid() == 0:
        pytest.fail(f"Orthanc is needed for the PACS tests: {problem}")
    pytest.skip(f"not root, so make test could not install Orthanc: {problem}")

"""Scans from a hospital PACS over DICOMweb, and results sent back (docs/PACS.md).

- ``connection``: a ``dicomweb-client`` connection (timeout, retries with backoff, basic auth or
  bearer token from the environment) whose failures are one line (``PacsError``);
- ``search``: QIDO-RS studies, series, instances;
- ``pull``: WADO-RS retrieve and import through ``rascore.ingest``, incremental by a keyed hash
  of each SOP Instance UID (``rascore.store.pacs``);
- ``uid_map``: the private file, outside the data folder, that maps pulled items back to the
  real UIDs (what a push needs);
- ``push``: a DICOM SR per result (reference grades, model prediction) stored with STOW-RS;
- ``orthanc_local``: a throw-away local Orthanc for tests, the benchmark and a quick start.

No Streamlit here; ``rascore.services.pacs`` is what the Admin page calls.
"""

from __future__ import annotations

from .connection import PacsError, PacsUnreachable, connect
from .pull import PullReport, instance_key, pull
from .push import PushReport, push
from .search import Instance, Study, list_instances, parse_date, search_studies
from .uid_map import UidMap

__all__ = [
    "Instance",
    "PacsError",
    "PacsUnreachable",
    "PullReport",
    "PushReport",
    "Study",
    "UidMap",
    "connect",
    "instance_key",
    "list_instances",
    "parse_date",
    "pull",
    "push",
    "search_studies",
]

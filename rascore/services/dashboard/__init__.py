"""Results for the Dashboard and Reader-study pages: models and readers against the reference.

One module per job, re-exported here so that a page calls ``dashboard.overview`` and the like:

- ``sections``: one modality and test cohort, the models' figures against the reference.
- ``crossmodality``: the active models of two modalities compared on the same joints.
- ``overview``: every active model on every test cohort, and the cross-modality comparisons.
- ``readers``: readers and models against the reference (the reader study).
- ``gloess``: patient GLOESS of readers and active models against the reference (ICC,
  Bland-Altman, joints per patient); imported as ``rascore.services.dashboard.gloess``.
- ``rows``, ``reader_rows``, ``published``: the pages' tables as rows of text.
- ``cache``: served unchanged while the store is, recomputed per section when it changed.

The statistics are ``rascore.evaluate``'s and the read-only queries ``rascore.store.results``'.
"""

from __future__ import annotations

from rascore.services.dashboard.cache import cache_stats, clear_cache
from rascore.services.dashboard.crossmodality import (
    CROSS_REFERENCE,
    CROSS_REFERENCE_SH,
    JointReference,
    combined_from_sh,
)
from rascore.services.dashboard.overview import Overview, overview
from rascore.services.dashboard.published import (
    PUBLISHED_BEST,
    PUBLISHED_SOURCE,
    PUBLISHED_SPD_VS_SGS,
    published_rows,
    published_spd_sgs_rows,
)
from rascore.services.dashboard.reader_rows import (
    LEVEL_ORDER,
    level_rows,
    reader_rows,
    resampling_line,
    sens_spec_rows,
    verdict_lines,
    versus_rows,
)
from rascore.services.dashboard.readers import REFERENCE_ROLES, ReaderResults, reader_results
from rascore.services.dashboard.rows import (
    auc_rows,
    auc_table_rows,
    baseline_rows,
    cross_rows,
    delong_rows,
    fmt,
    shift_item_rows,
    shift_text,
    summary_rows,
)
from rascore.services.dashboard.sections import (
    N_BOOT,
    TEST_COHORTS,
    ModelFigures,
    ModelRef,
    Section,
    active_models,
    compute_figures,
    delong_between,
    section,
    version_choices,
)

__all__ = [
    "CROSS_REFERENCE",
    "CROSS_REFERENCE_SH",
    "LEVEL_ORDER",
    "N_BOOT",
    "PUBLISHED_BEST",
    "PUBLISHED_SOURCE",
    "PUBLISHED_SPD_VS_SGS",
    "REFERENCE_ROLES",
    "TEST_COHORTS",
    "JointReference",
    "ModelFigures",
    "ModelRef",
    "Overview",
    "ReaderResults",
    "Section",
    "active_models",
    "auc_rows",
    "auc_table_rows",
    "baseline_rows",
    "cache_stats",
    "clear_cache",
    "combined_from_sh",
    "compute_figures",
    "cross_rows",
    "delong_between",
    "delong_rows",
    "fmt",
    "level_rows",
    "overview",
    "published_rows",
    "published_spd_sgs_rows",
    "reader_results",
    "shift_item_rows",
    "shift_text",
    "reader_rows",
    "resampling_line",
    "section",
    "sens_spec_rows",
    "summary_rows",
    "verdict_lines",
    "version_choices",
    "versus_rows",
]

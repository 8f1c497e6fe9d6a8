"""Build the demo project: the simulated cohort imported the way real scans are, readers, labels,
and (unless turned off) a calibration set and a finished reader study.

Stills are written as PNG and clips as H.264 MP4 (15 fps), then ingested through
``rascore.media`` exactly like an upload, so decoding, the cache and the store are the real ones.
The study and calibration are made through the services, as an admin and readers would
(``rascore.services.demo_study``), so this module sits above the services, beside the CLI.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from rascore import scale
from rascore.project import Project

DEMO_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("demo-admin", "admin", "expert"),
    ("demo-expert", "expert", "expert"),
    ("demo-reader", "reader", "intermediate"),
)


@dataclass
class DemoResult:
    """What the demo build created; passwords are shown once and never stored in clear."""

    items: int = 0
    annotations: int = 0
    references: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    jobs: list[int] = field(default_factory=list)
    study: object | None = None  # rascore.services.demo_study.DemoStudy, when built


def encode(sim) -> tuple[bytes, str]:
    """A simulated item as the file a scanner export would give: PNG still or MP4 clip."""
    import imageio.v3 as iio

    if sim.frames.shape[0] == 1:
        return iio.imwrite("<bytes>", sim.frames[0], extension=".png"), "png"
    data = iio.imwrite(
        "<bytes>",
        sim.frames,
        extension=".mp4",
        fps=sim.fps or 15,
        codec="libx264",
        quality=8,
        macro_block_size=2,  # widened frames: any even size, never rescaled
    )
    return data, "mp4"


def _truth_npz(sim) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        synovium=sim.synovium,
        doppler=sim.doppler,
        peak_doppler=sim.peak_doppler,
        bone_line=sim.bone_line,
    )
    return buffer.getvalue()


def _render_ingest(spec, media_dir, cache_dir, key: bytes, truth_dir):
    """Worker: render one item, encode it as a scanner export, ingest it, save its masks.

    Runs in a child process, so decoding and caching happen in parallel too; the store writes
    files atomically under unique temporary names, so workers never collide.
    """
    from rascore.media import MediaStore, ingest_bytes
    from rascore.synth import render_item

    sim = render_item(spec)
    data, ext = encode(sim)
    ingested = ingest_bytes(data, f"{spec.key}.{ext}", MediaStore(media_dir, cache_dir), key)
    tmp = truth_dir / f".{spec.key}.npz.tmp"
    tmp.write_bytes(_truth_npz(sim))
    os.replace(tmp, truth_dir / f"{spec.key}.npz")
    return spec, ingested


def rendered(project: Project, specs, workers: int) -> Iterator[tuple]:
    """Render, encode and ingest items in worker processes; yields (spec, IngestResult) in order."""
    s = project.settings
    s.truth_dir.mkdir(parents=True, exist_ok=True)
    job = partial(
        _render_ingest, media_dir=s.media_dir, cache_dir=s.cache_dir, key=project.key, truth_dir=s.truth_dir
    )
    if workers <= 1:
        yield from map(job, specs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(job, specs, chunksize=4)


def build_demo(
    project: Project,
    size: str = "paper",
    seed: int = 0,
    variation: str = "none",
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    password_rounds: int = 12,
    queue_training: bool = True,
    study: bool = True,
) -> DemoResult:
    """Generate and import the simulated cohort, its readers, their reads and the reference.

    Unless ``queue_training`` is False, a retraining of each modality model is queued, so a
    running worker fills the dashboards within minutes of the first start. Unless ``study`` is
    False, a calibration set with the simulated readers' calibration reads and a finished
    (closed) reader study with a simulated aid are added (``rascore.services.demo_study``).
    ``variation``: "none" (the default: each profile's centre settings) or "wide" (each
    acquisition drawn around its scanner profile); see ``synth.plan_cohort``. The demo stays
    narrow by default because the fast preset does not yet learn the wide cohort well
    (docs/ROBUSTNESS.md); test3's scanner-C is outside training's settings either way.
    """
    from rascore.auth import add_user
    from rascore.media import pseudonym
    from rascore.store import accounts
    from rascore.synth import READERS, adjudicate, plan_cohort, simulate_reads

    store = project.store
    if store.has_source("demo"):
        raise RuntimeError("this project already holds the demo cohort")
    specs = plan_cohort(size, seed, variation)
    result = DemoResult()
    item_ids: dict[str, int] = {}
    batch: list[tuple] = []

    def flush() -> None:
        with store.transaction():
            for spec, ing, mask_rel in batch:
                store.add_media(
                    ing.sha256,
                    format=ing.format,
                    kind=ing.kind,
                    nbytes=project.media.media_path(ing.sha256).stat().st_size,
                    frames=ing.frames,
                    height=ing.height,
                    width=ing.width,
                    fps=ing.fps,
                    meta=ing.meta,
                )
                item_id = store.add_item(
                    media_sha256=ing.sha256,
                    modality=spec.modality,
                    cohort=spec.cohort,
                    frames=ing.frames,
                    fps=ing.fps,
                    patient=pseudonym(spec.patient, project.key),
                    joint=spec.joint,
                    side=spec.side,
                    scanner_profile=spec.scanner_profile,
                    source="demo",
                    external_key=spec.key,
                )
                store.set_truth(item_id, spec.sh, spec.pd, mask_rel)
                item_ids[spec.key] = item_id
        batch.clear()

    for done, (spec, ing) in enumerate(rendered(project, specs, workers), start=1):
        batch.append((spec, ing, f"truth/{spec.key}.npz"))
        if len(batch) >= 64:
            flush()
        if progress:
            progress(done, len(specs))
    flush()
    result.items = len(item_ids)

    reads = simulate_reads(specs, seed)
    by_key = {spec.key: spec for spec in specs}
    reads_by_item: dict[str, list] = {}
    with store.transaction():
        users = {}
        for reader in READERS:
            existing = accounts.user(store, reader.name)
            users[reader.name] = (
                existing["id"]
                if existing
                else accounts.add_user(store, reader.name, reader.role, reader.level)
            )
        for read in reads:
            modality = by_key[read.item_key].modality
            store.add_annotation(
                item_ids[read.item_key],
                users[read.reader],
                read.sh,
                read.pd if scale.modality(modality).doppler else None,
                modality=modality,
                seconds=read.seconds,
            )
            reads_by_item.setdefault(read.item_key, []).append(read)
        for key, item_id in item_ids.items():
            sh, pd, method = adjudicate(by_key[key], reads_by_item.get(key, []))
            store.set_reference(item_id, sh, pd, method, modality=by_key[key].modality)
            result.references[method] = result.references.get(method, 0) + 1
        store.audit("demo.build", detail={"size": size, "seed": seed, "items": result.items})
    result.annotations = len(reads)

    if queue_training:
        from rascore.store import jobs as job_sql

        for code in scale.MODALITIES:
            result.jobs.append(job_sql.submit(store, "train", code, {}))
    for name, role, level in DEMO_ACCOUNTS:
        if accounts.user(store, name) is None:
            password = secrets.token_urlsafe(12)
            add_user(store, name, role, level, password, rounds=password_rounds)
            result.accounts[name] = password
    if study:
        started = time.perf_counter()
        from rascore.services.demo_study import build_demo_study

        result.study = build_demo_study(store, specs, item_ids, seed)
        result.study.seconds = time.perf_counter() - started  # with importing the services
    return result

"""Pull throughput from a local Orthanc over DICOMweb: instances/s and MB/s, and where the time goes.

Starts a throw-away Orthanc with its DICOMweb plugin (``rascore.pacs.orthanc_local``, the same
start-up the tests use), loads ``--copies`` copies of the seven ultrasound sample files of
pydicom / pydicom-data (each copy with new Study, Series and SOP Instance UIDs, so every copy is
new to the server and to the project: 1-frame native, JPEG 2000 and RGB stills, 2-frame native and
RLE clips, a 30-frame JPEG YBR cine), then pulls everything into a fresh project exactly as
``rascore pacs pull`` does (single-frame studies as SGS, multi-frame studies as DGS) and prints:

- instances/s and MB/s (MB of DICOM bytes retrieved, as stored on the server) over the whole pull;
- the share of time in the network (WADO-RS requests and parsing their multipart answer) and in
  the rest (QIDO-RS search, decode, de-identify, store, cache, record), from ``PullStats``;
- a second pull of the same studies (nothing new: the incremental skip).

Run: .venv/bin/python bench/bench_pacs.py [--copies 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rascore import pacs  # noqa: E402
from rascore.config import PacsCredentials  # noqa: E402
from rascore.pacs import orthanc_local  # noqa: E402
from rascore.project import open_project  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
MEDIA_S = [0.0]


def _timed_media():
    """Time ``rascore.media.ingest_bytes`` (decode, de-identify, write the file and the frame
    cache), which ``rascore.ingest.import_entry`` looks up at each call."""
    import rascore.media as media

    original = media.ingest_bytes

    def ingest_bytes(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            MEDIA_S[0] += time.perf_counter() - started

    media.ingest_bytes = ingest_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20, help="copies of the 7 sample files (default 20)")
    args = parser.parse_args()
    problem = orthanc_local.installed()
    if problem:
        print(f"bench_pacs: {problem}", file=sys.stderr)
        return 1
    _timed_media()
    with tempfile.TemporaryDirectory(prefix="rascore-bench-pacs-") as tmp:
        tmp_path = Path(tmp)
        server = orthanc_local.local_orthanc(tmp_path / "orthanc", {USER: PASSWORD})
        with server:
            started = time.perf_counter()
            samples = orthanc_local.load_samples(server, copies=args.copies)
            load_s = time.perf_counter() - started
            os.environ["RASCORE_DATA"] = str(tmp_path / "project")
            for name in ("RASCORE_DB", "RASCORE_MODELS", "RASCORE_PACS_UID_MAP"):
                os.environ.pop(name, None)
            project = open_project()
            project.store  # migrate before timing  # noqa: B018
            connection = pacs.connect(server.url, PacsCredentials(user=USER, password=PASSWORD))
            print(
                f"Orthanc {server.rest}: loaded {len(samples)} instances "
                f"({sum(len(s.data) for s in samples) / 1e6:.1f} MB) in {load_s:.1f} s"
            )
            totals = {"instances": 0, "bytes": 0, "network": 0.0, "total": 0.0, "imported": 0, "rejected": 0}
            started, cpu = time.perf_counter(), time.process_time()
            studies = pacs.search_studies(connection)
            for study in studies:
                pacs.list_instances(connection, study)
            search_s = time.perf_counter() - started
            groups = (
                ("SGS", [s for s in studies if all(i.frames == 1 for i in s.instances)]),
                ("DGS", [s for s in studies if any(i.frames > 1 for i in s.instances)]),
            )
            for code, chosen in groups:
                result = pacs.pull(project, connection, chosen, code, "train")
                stats = result.stats
                totals["instances"] += stats.instances
                totals["bytes"] += stats.bytes
                totals["network"] += stats.network_s
                totals["total"] += stats.total_s
                totals["imported"] += len(result.report.imported)
                totals["rejected"] += len(result.report.rejected)
            total_s = totals["total"] + search_s
            cpu_s = time.process_time() - cpu
            print(
                f"pull: {totals['instances']} instances ({totals['bytes'] / 1e6:.1f} MB) in {total_s:.2f} s "
                f"(imported {totals['imported']}, rejected {totals['rejected']})"
            )
            print(
                f"  {totals['instances'] / total_s:.1f} instances/s, {totals['bytes'] / 1e6 / total_s:.1f} MB/s"
            )
            network = totals["network"]
            network, media_s = totals["network"], MEDIA_S[0]
            rest = total_s - network - search_s - media_s
            print(
                f"  network: WADO-RS retrieve + multipart parse {network:.2f} s = {100 * network / total_s:.0f}%, "
                f"QIDO-RS search {search_s:.2f} s = {100 * search_s / total_s:.0f}%"
            )
            print(
                f"  import: decode + de-identify + media file + frame cache {media_s:.2f} s = "
                f"{100 * media_s / total_s:.0f}%, checks + store transaction + UID map {rest:.2f} s = "
                f"{100 * rest / total_s:.0f}%"
            )
            print(
                f"  this process's CPU time {cpu_s:.2f} s = {100 * cpu_s / total_s:.0f}% of the pull; the rest "
                "is waiting for the server, the disk or a CPU (load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
            started = time.perf_counter()
            studies = pacs.search_studies(connection)
            for study in studies:
                pacs.list_instances(connection, study)
            again = [
                pacs.pull(
                    project,
                    connection,
                    [s for s in studies if (max(i.frames for i in s.instances) > 1) == (code == "DGS")],
                    code,
                    "train",
                )
                for code, _ in groups
            ]
            print(
                f"second pull (search included): imported {sum(len(r.report.imported) for r in again)}, "
                f"already imported {sum(r.skipped for r in again)}, in {time.perf_counter() - started:.2f} s"
            )
            connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

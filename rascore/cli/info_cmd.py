"""``rascore info``: the project's paths and counts (items per modality and cohort, readers, labels)."""

from __future__ import annotations

import argparse
import json

from rascore.project import open_project


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``info``."""
    parser = sub.add_parser(
        "info",
        help="show the project's paths and counts",
        description="Show where the project lives and what it holds.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    project = open_project()
    counts = project.store.counts()
    s = project.settings
    paths = {"db": str(s.db_path), "data": str(s.data_dir), "models": str(s.models_dir)}
    if args.json:
        print(json.dumps({"paths": paths, **counts}, indent=2))
        return 0
    for key, value in paths.items():
        print(f"{key:<8} {value}")
    print(f"items    {counts['items_total']}")
    for key, n in sorted(counts["items"].items()):
        print(f"  {key:<12} {n}")
    print("users    " + ", ".join(f"{role} {n}" for role, n in sorted(counts["users"].items())))
    print(
        f"annotations {counts['annotations']} on {counts['annotated_items']} items; "
        f"reference labels {counts['reference_labels']}"
    )
    return 0

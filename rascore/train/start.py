"""Where a training run starts: scratch, a torchvision weights file, or a RAScore model.

``--weights`` (``TrainConfig.weights``) takes

- ``none`` / ``scratch``: random initialisation;
- ``auto``: a torchvision file already in torch's hub cache, if any (rascore.nets.pretrained);
- ``MODALITY@VERSION`` (``SGS@3``): a model version registered in this project, resolved through
  the registry to its checkpoint file (``resolve``);
- a path: a RAScore checkpoint (``rascore.train.checkpoint`` format, e.g. another project's
  ``models/SGS/v3/model.pt``) or a torchvision-style weights file.

Fine-tuning from a RAScore model loads every tensor of the source network. The source must be
the same architecture as this run, or a one-line ValueError says which differs and what to pass;
its options (width, pooling) are taken over (``adopt_source_network``), so a model trained at an
earlier preset's width can still be fine-tuned at that width. The grade head (``backbone.fc``) is kept only
when it means the same thing: same head type and the same target item (SH or the combined EOSS);
otherwise it is re-initialised. What the run started from (file, sha256, modality and version,
the item sources the source model was trained on) goes into the checkpoint's ``pretrained``
record, the model card and, through ``metrics["training"]["start_from"]``, the registry row.

**The simulator model.** A version whose training items were all imported by ``rascore demo``
(item source ``demo``; ``metrics["training"]["item_sources"]``, recorded since this module
exists) was trained on the simulator alone: ``simulator_version`` finds the newest such version
of a modality. ``rascore demo`` queues a training of each modality, so a demo project holds one
after its first worker run; models registered before the sources were recorded are not
recognised (retrain them to be).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from rascore.scale import modality as lookup_modality
from rascore.store import registry

VERSION_REF = re.compile(r"^\s*([A-Za-z]{3})\s*@\s*v?(\d+)\s*$")
HEAD_PREFIX = "backbone.fc."
SIMULATOR_SOURCE = "demo"


def parse_version_ref(weights: object) -> tuple[str, int] | None:
    """``"SGS@3"`` -> ("SGS", 3); None when ``weights`` is not a modality@version reference."""
    match = VERSION_REF.match(str(weights or ""))
    if not match:
        return None
    return lookup_modality(match.group(1)).code, int(match.group(2))


def check_weights(store, weights: str | None) -> str | None:
    """A ``--weights`` value checked before a job is queued (torch-free): a modality@version must
    be registered, a path must exist. Returns it normalised (``SGS@3``); ValueError/LookupError."""
    if weights is None or str(weights).strip().lower() in ("", "auto", "none", "scratch"):
        return None if weights is None else str(weights).strip().lower() or None
    ref = parse_version_ref(weights)
    if ref is not None:
        if registry.get_version(store, *ref) is None:
            raise LookupError(f"no {ref[0]} version {ref[1]} is registered in this project")
        return f"{ref[0]}@{ref[1]}"
    if "@" in str(weights) and not Path(str(weights)).expanduser().exists():
        raise ValueError(f"{weights!r} is not MODALITY@VERSION (e.g. SGS@3) nor an existing file")
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    return str(path.resolve())


def resolve(project, config):
    """The config with a ``MODALITY@VERSION`` in ``weights`` replaced by that version's checkpoint
    path (``start_from`` keeps the reference); any other config unchanged.

    LookupError (a user can act on) when the version is not registered or its file is missing.
    """
    ref = parse_version_ref(config.weights)
    if ref is None:
        return config
    from rascore.train.versions import find_version, version_files

    code, version = ref
    row = find_version(project, code, version)
    path, _ = version_files(project, row)
    if not path.is_file():
        raise LookupError(f"the checkpoint of {code} v{version} is missing: {path}")
    return replace(config, weights=str(path), start_from=f"{code}@{version}")


def adopt_source_network(config):
    """The config with the network options (width, pooling) of the RAScore checkpoint it starts
    from, when that checkpoint is the same architecture; any other config unchanged."""
    from rascore.nets.pretrained import resolve_weights

    # "auto" finds only torchvision files in the hub cache: nothing to take over, nothing to read
    if str(config.weights or "auto").lower() == "auto" or parse_version_ref(config.weights):
        return config
    path = resolve_weights(config.arch, config.weights)
    source = read_rascore_checkpoint(path) if path is not None else None
    if source is None or source.get("arch") != config.arch:
        return config
    options = source.get("arch_options") or {}
    taken = {}
    if options.get("width") is not None:
        taken["net_width"] = int(options["width"])
    if options.get("pooling"):
        taken["pooling"] = str(options["pooling"])
    return replace(config, **taken) if taken else config


def read_rascore_checkpoint(path: str | Path) -> dict | None:
    """The RAScore checkpoint in ``path``, or None when the file holds something else."""
    import torch

    from rascore.train.checkpoint import FORMAT

    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one readable message
        raise ValueError(f"weights file {path} could not be read: {exc}") from exc
    return obj if isinstance(obj, dict) and obj.get("format") == FORMAT else None


def _describe(arch: str, options: dict) -> str:
    bits = [arch]
    if arch.endswith("slim_resnet18") and options.get("width") is not None:
        bits.append(f"width {options['width']}")
    if arch.startswith("frames_") and options.get("pooling"):
        bits.append(f"{options['pooling']} pooling")
    return ", ".join(bits)


def check_compatible(checkpoint: dict, config, label: str) -> None:
    """ValueError in one line when the source network is not the architecture this run builds."""
    source = {k: v for k, v in (checkpoint.get("arch_options") or {}).items() if k in ("width", "pooling")}
    wanted = {"width": config.net_width, "pooling": config.pooling}
    preset = (checkpoint.get("args") or {}).get("preset")
    same_options = all(source.get(k, wanted[k]) == wanted[k] for k in wanted)
    if checkpoint.get("arch") != config.arch or not same_options:
        raise ValueError(
            f"cannot start from {label}: it is {_describe(checkpoint.get('arch'), source)} "
            f"(preset {preset}), this run builds {_describe(config.arch, wanted)} (preset {config.preset}); "
            f"train with --preset {preset} or the source's architecture"
        )


def load_from_checkpoint(net, checkpoint: dict, config, path: str | Path) -> dict:
    """Load a RAScore checkpoint's weights into ``net`` (the head only when it means the same).

    Returns the ``pretrained`` record of the new checkpoint.
    """
    from rascore.nets.pretrained import file_sha256

    label = config.start_from or str(path)
    check_compatible(checkpoint, config, label)
    state = checkpoint["model"]
    source_modality = checkpoint.get("modality")
    same_target = (
        source_modality is not None
        and lookup_modality(source_modality).target == lookup_modality(config.modality).target
    )
    keep_head = checkpoint.get("head") == config.head and same_target
    own = net.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
    missing = [
        k for k in own if not k.startswith(HEAD_PREFIX) and (k not in body or body[k].shape != own[k].shape)
    ]
    if missing:
        raise ValueError(f"cannot start from {label}: {len(missing)} tensors do not fit, e.g. {missing[0]}")
    net.load_state_dict(
        {**body, **({k: v for k, v in state.items() if k.startswith(HEAD_PREFIX)} if keep_head else {})},
        strict=False,
    )
    if keep_head:
        head = "kept"
    else:
        why = (
            f"{checkpoint.get('head')} head, this run {config.head}"
            if checkpoint.get("head") != config.head
            else f"the source predicts {lookup_modality(source_modality).target if source_modality else 'an unknown item'}, "
            f"this run {lookup_modality(config.modality).target}"
        )
        head = f"re-initialised ({why})"
    version = None
    if config.start_from:
        version = parse_version_ref(config.start_from)[1]
    else:
        match = re.fullmatch(r"v(\d+)", Path(path).parent.name)
        version = int(match.group(1)) if match else None
    training = (checkpoint.get("metrics") or {}).get("training") or {}
    return {
        "kind": "rascore",
        "file": str(path),
        "sha256": file_sha256(Path(path)),
        "reference": config.start_from,
        "modality": source_modality,
        "version": version,
        "arch": checkpoint.get("arch"),
        "preset": (checkpoint.get("args") or {}).get("preset"),
        "item_sources": training.get("item_sources")
        or (checkpoint.get("snapshot") or {}).get("item_sources"),
        "head": head,
        "loaded": len(body) + (len(state) - len(body) if keep_head else 0),
        "total": len(own),
    }


def start_record(pretrained: dict | None) -> dict:
    """What the registry row keeps of a run's starting point (``metrics["training"]["start_from"]``)."""
    if not pretrained:
        return {"kind": "scratch"}
    keys = ("kind", "file", "sha256", "reference", "modality", "version", "head", "item_sources")
    return {
        "kind": pretrained.get("kind", "torchvision"),
        **{k: pretrained.get(k) for k in keys[1:] if k in pretrained},
    }


def describe_start(pretrained: dict | None) -> str:
    """One line for the model card: where the weights came from."""
    if not pretrained:
        return "trained from scratch (no pretrained weights)"
    if pretrained.get("kind") != "rascore":
        return (
            f"pretrained: initialised from local file `{pretrained['file']}` (sha256 "
            f"{pretrained['sha256'][:16]}..., {pretrained['loaded']}/{pretrained['total']} tensors)"
        )
    source = pretrained.get("reference") or (
        f"{pretrained.get('modality')} v{pretrained['version']}"
        if pretrained.get("version")
        else "a RAScore model"
    )
    sources = pretrained.get("item_sources") or {}
    trained_on = (
        " trained on " + ", ".join(f"{n} {s} items" for s, n in sorted(sources.items())) if sources else ""
    )
    return (
        f"fine-tuned from RAScore model {source}{trained_on} (`{pretrained['file']}`, sha256 "
        f"{pretrained['sha256'][:16]}..., {pretrained['loaded']}/{pretrained['total']} tensors; "
        f"grade head {pretrained['head']})"
    )


def is_simulator_trained(metrics: dict | None) -> bool:
    """Whether a version's recorded training items all came from the demo simulator."""
    sources = ((metrics or {}).get("training") or {}).get("item_sources") or {}
    return bool(sources) and set(sources) == {SIMULATOR_SOURCE}


def simulator_version(store, modality: str) -> dict | None:
    """The newest registered version of ``modality`` trained on demo items only, or None."""
    for row in registry.list_versions(store, lookup_modality(modality).code):  # newest first
        if is_simulator_trained(row.get("metrics")):
            return row
    return None

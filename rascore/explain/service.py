"""Explain one scan with one model version: attribution maps at image resolution, pictures, the cache.

``Explainer`` serves ``item(...)`` (a stored item, frames from the decoded-array cache) and
``file(...)`` (a file decoded exactly as ingest decodes it). A repeated request is answered from
``$RASCORE_DATA/explain`` without loading the model or the frames; a new model version has a new
key, so its explanations are computed afresh.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rascore.atomic import write_atomic
from rascore.names import METHOD_NAMES
from rascore.explain.attribution import (
    ExplainOptions,
    attribute,
    check_method,
    frame_importance,
    to_image_size,
)
from rascore.explain.cache import ExplainCache
from rascore.explain.render import (
    display_scale,
    importance_curve,
    normalise_heat,
    overlay_panel,
    save_animation,
    save_png,
)

ANIMATION_FORMATS: tuple[str, ...] = ("gif", "mp4")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelRef:
    """One checkpoint to explain with: where it is, what it is, and the key its explanations are cached under."""

    path: Path
    key: str
    modality: str
    version: int | None = None
    model_version_id: int | None = None

    @property
    def label(self) -> str:
        """Human name, e.g. ``SPD v3``."""
        return (
            f"{self.modality} v{self.version}"
            if self.version is not None
            else f"{self.modality} ({self.path.name})"
        )

    def load(self):
        """(network in eval mode on the CPU, Preprocessing) from the checkpoint."""
        from rascore.train.checkpoint import load_checkpoint, model_from_checkpoint

        return model_from_checkpoint(load_checkpoint(self.path))


def registered_model(project, modality: str, version: int | None = None) -> ModelRef:
    """A registered version (default: the active one) of a modality's model.

    Key: modality, version and a fingerprint of the registry row id, its creation time and the
    checkpoint file's size and modification time, so a replaced or re-registered checkpoint is a
    new key without hashing the whole file on every request. LookupError when there is none.
    """
    from rascore.train.versions import find_version, version_files

    row = find_version(project, modality, version)
    path, _ = version_files(project, row)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise LookupError(f"checkpoint of {row['modality']} v{row['version']} is missing: {path}") from None
    stamp = f"{row['id']}|{row['created_at']}|{row['path']}|{stat.st_size}|{stat.st_mtime_ns}"
    fingerprint = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return ModelRef(
        path,
        f"{row['modality']}-v{row['version']}-{fingerprint}",
        row["modality"],
        int(row["version"]),
        int(row["id"]),
    )


def checkpoint_model(path: str | Path) -> ModelRef:
    """An unregistered checkpoint file, keyed by the sha256 of its bytes."""
    from rascore.train.checkpoint import load_checkpoint

    path = Path(path)
    modality = load_checkpoint(path)["modality"]
    return ModelRef(path, f"{modality}-sha{file_sha256(path)[:16]}", modality)


@dataclass
class Explanation:
    """One explanation: the prediction, the target explained, where its pictures are, per-frame importance."""

    method: str
    target: int
    predicted: int
    probabilities: list[float]
    modality: str
    version: int | None
    model_key: str
    subject: str
    frame_index: list[int]
    n_frames: int
    importance: list[float] | None  # clips: share of positive attribution per frame shown
    layer: str | None
    box: list[int]  # (top, left, height, width) of the picture the model saw
    scale: float  # attribution at the top of the colour bar
    paths: dict[str, str]  # overlay, heatmap, and for clips animation and importance
    options: dict
    cached: bool = False
    seconds: float = 0.0  # this request, end to end
    compute_seconds: float = 0.0  # the attribution itself when it was computed
    _heatmap: np.ndarray | None = field(default=None, repr=False)

    @property
    def method_name(self) -> str:
        """Display name of the method."""
        return METHOD_NAMES[self.method]

    @property
    def heatmap(self) -> np.ndarray:
        """Signed attribution (T, H, W) float32 at the original picture's resolution, per frame shown."""
        if self._heatmap is None:
            with np.load(self.paths["heatmap"]) as data:
                self._heatmap = data["heatmap"]
        return self._heatmap

    def to_dict(self) -> dict:
        """Plain dict for JSON output (the heat map itself stays in its file)."""
        data = asdict(self)
        data.pop("_heatmap")
        data["method_name"] = self.method_name
        return data


def _meta(explanation: Explanation) -> dict:
    data = explanation.to_dict()
    for key in ("paths", "cached", "seconds", "method_name"):
        data.pop(key, None)
    return data


def _copy_atomic(source: Path, target: Path) -> None:
    with open(source, "rb") as src:
        write_atomic(target, lambda handle: shutil.copyfileobj(src, handle), fsync=False)


def export(explanation: Explanation, out: str | Path) -> dict[str, str]:
    """Copy an explanation's pictures beside ``out`` (atomically): ``out`` is the overlay PNG.

    Clips also get ``<stem>.gif`` (or ``.mp4``) and ``<stem>-importance.png``. Returns {role: path}.
    """
    out = Path(out)
    written = {"overlay": out}
    if "animation" in explanation.paths:
        animation = Path(explanation.paths["animation"])
        written["animation"] = out.with_name(out.stem + animation.suffix)
    if "importance" in explanation.paths:
        written["importance"] = out.with_name(out.stem + "-importance.png")
    for role, target in written.items():
        _copy_atomic(Path(explanation.paths[role]), target)
    return {role: str(path) for role, path in written.items()}


class Explainer:
    """Explanations for stored items and files, with networks kept loaded and results cached.

    ``device``: where attributions run (``cpu`` or ``cuda``). ``use_cache`` False recomputes
    (and refreshes the cache). ``animation``: ``gif`` or ``mp4`` for clips.
    """

    def __init__(
        self,
        project,
        device: str = "cpu",
        options: ExplainOptions = ExplainOptions(),
        use_cache: bool = True,
        animation: str = "gif",
    ) -> None:
        if animation not in ANIMATION_FORMATS:
            raise ValueError(f"animation must be one of {', '.join(ANIMATION_FORMATS)}")
        self.project = project
        self.device = device
        self.options = options
        self.use_cache = use_cache
        self.animation = animation
        self.cache = ExplainCache(Path(project.settings.data_dir) / "explain")
        self._models: dict[str, tuple] = {}

    def network(self, model: ModelRef):
        """(network, Preprocessing) of a checkpoint, loaded once per Explainer."""
        if model.key not in self._models:
            self._models[model.key] = model.load()
        return self._models[model.key]

    def item(
        self,
        item_id: int,
        method: str,
        *,
        modality: str | None = None,
        version: int | None = None,
        target: int | None = None,
        options: ExplainOptions | None = None,
    ) -> Explanation:
        """Explain a stored item with a version (default: the active one) of its modality's model.

        ``options``: this request's settings instead of the Explainer's (e.g. another IG baseline).
        """
        started = time.perf_counter()
        row = self.project.store.item(int(item_id))
        if row is None:
            raise LookupError(f"no item {item_id}")
        model = registered_model(self.project, modality or row["modality"], version)
        sha = row["media_sha256"]
        return self.explain(
            lambda: self._item_frames(sha, item_id),
            f"item{int(item_id)}-{sha[:12]}",
            model,
            method,
            target,
            started,
            options,
        )

    def _item_frames(self, sha: str, item_id: int) -> np.ndarray:
        media = self.project.media
        try:
            return media.load_cache(sha)
        except FileNotFoundError:
            from rascore.media import decode_bytes

            return decode_bytes(media.read_bytes(sha), f"item {item_id}").frames

    def file(
        self,
        path: str | Path,
        method: str,
        *,
        modality: str | None = None,
        version: int | None = None,
        target: int | None = None,
        checkpoint: str | Path | None = None,
        options: ExplainOptions | None = None,
    ) -> Explanation:
        """Explain a file, decoded as ingest does; modality guessed from its pixels when not given.

        ``checkpoint``: explain with that checkpoint file instead of a registered version.
        ``options``: this request's settings instead of the Explainer's.
        """
        from rascore.media import decode_file

        started = time.perf_counter()
        path = Path(path)
        decoded = None

        def frames() -> np.ndarray:
            nonlocal decoded
            if decoded is None:
                decoded = decode_file(path).frames
            return decoded

        if checkpoint is not None:
            model = checkpoint_model(checkpoint)
        else:
            if modality is None:
                from rascore.predict import guess_modality

                modality = guess_modality(frames())
            model = registered_model(self.project, modality, version)
        subject = f"file-{file_sha256(path)[:16]}"
        return self.explain(frames, subject, model, method, target, started, options)

    def explain(
        self,
        frames: Callable[[], np.ndarray] | np.ndarray,
        subject: str,
        model: ModelRef,
        method: str,
        target: int | None = None,
        started: float | None = None,
        options: ExplainOptions | None = None,
    ) -> Explanation:
        """The explanation of ``frames`` (or a callable giving them) by ``model``: cached or computed.

        The cache entry is keyed by the settings that change this method's map (``options.key``),
        so e.g. a blurred-baseline map is never served for a black-baseline request.
        """
        started = time.perf_counter() if started is None else started
        check_method(method)
        options = self.options if options is None else options
        settings = options.key(method)
        if self.use_cache:
            hit = self.cache.lookup(model.key, subject, method, settings, target)
            if hit is not None:
                folder, meta = hit
                meta = dict(meta)
                files = meta.pop("files")
                return Explanation(
                    **meta,
                    paths={k: str(folder / v) for k, v in files.items()},
                    cached=True,
                    seconds=time.perf_counter() - started,
                )
        pixels = frames() if callable(frames) else np.asarray(frames)
        net, prep = self.network(model)
        result = attribute(net, prep, pixels, method, target, options, self.device)
        height, width = pixels.shape[-3:-1]
        heatmap = to_image_size(result.maps, height, width, result.box)
        dynamic = prep.dynamic
        importance = frame_importance(heatmap).tolist() if dynamic else None
        explanation = Explanation(
            method=method,
            target=result.target,
            predicted=result.predicted,
            probabilities=result.probabilities,
            modality=model.modality,
            version=model.version,
            model_key=model.key,
            subject=subject,
            frame_index=[int(i) for i in result.frame_index],
            n_frames=int(pixels.shape[0]) if pixels.ndim == 4 else 1,
            importance=importance,
            layer=result.layer,
            box=list(result.box),
            scale=display_scale(heatmap),
            paths={},
            options={
                "method": method,
                "settings": settings,
                "device": str(self.device),
                "setting": options.describe(method),
            },
            compute_seconds=result.seconds,
            _heatmap=heatmap,
        )
        shown = pixels[result.frame_index] if pixels.ndim == 4 else pixels[None]

        def write(folder: Path) -> dict[str, str]:
            return self._write_files(folder, explanation, shown)

        predicted = result.predicted if target is None or target == result.predicted else None
        folder, meta = self.cache.store(
            model.key,
            subject,
            method,
            settings,
            result.target,
            _meta(explanation),
            write,
            predicted=predicted,
        )
        explanation.paths = {k: str(folder / v) for k, v in meta["files"].items()}
        explanation.seconds = time.perf_counter() - started
        return explanation

    def _write_files(self, folder: Path, explanation: Explanation, shown: np.ndarray) -> dict[str, str]:
        """Heat map, overlay and (clips) animation and importance curve into ``folder``."""
        heatmap = explanation.heatmap
        np.savez_compressed(
            folder / "heatmap.npz",
            heatmap=heatmap.astype(np.float32),
            frame_index=np.asarray(explanation.frame_index),
        )
        heat = normalise_heat(heatmap, explanation.scale)
        p = explanation.probabilities[explanation.target]
        who = (
            f"{explanation.modality} v{explanation.version}"
            if explanation.version is not None
            else explanation.modality
        )
        title = (
            f"{explanation.method_name} | {who} | grade {explanation.target} "
            f"(p={p:.2f}, predicted {explanation.predicted})"
        )
        label = f"{explanation.scale:.2g}"
        files = {"heatmap": "heatmap.npz", "overlay": "overlay.png"}
        if explanation.importance is None:
            save_png(folder / "overlay.png", overlay_panel(shown, heat, title, label, box=explanation.box))
            return files
        captions = [
            f"frame {f}: {share:.0%}" for f, share in zip(explanation.frame_index, explanation.importance)
        ]
        save_png(
            folder / "overlay.png", overlay_panel(shown, heat, title, label, captions, box=explanation.box)
        )
        tiles = [
            overlay_panel(
                shown[t : t + 1],
                heat[t : t + 1],
                title,
                label,
                [captions[t]],
                box=explanation.box,
                min_width=256,
            )
            for t in range(len(shown))
        ]
        name = f"animation.{self.animation}"
        save_animation(folder / name, tiles, fps=3.0)
        curve = importance_curve(
            explanation.frame_index,
            explanation.importance,
            explanation.n_frames,
            f"{explanation.method_name}: share of attribution per frame",
        )
        save_png(folder / "importance.png", curve)
        files.update({"animation": name, "importance": "importance.png"})
        return files

    def prune(self) -> list[str]:
        """Delete cached explanations of model versions that are no longer registered."""
        from rascore.store import registry

        keep = []
        for row in registry.list_versions(self.project.store):
            try:
                keep.append(registered_model(self.project, row["modality"], row["version"]).key)
            except LookupError:
                continue
        return self.cache.prune(keep)

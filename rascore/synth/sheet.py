"""Pictures for people: a contact sheet of simulated items and a side-by-side with a real scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rascore.synth.cohort import MODALITY_ORDER, example_spec
from rascore.synth.profiles import FRAME_H, FRAME_W
from rascore.synth.render import render_item

# (SH, PD) shown in each grade column: SH grade on greyscale rows, combined EOSS on PD rows
_COLUMNS = {
    "SGS": [(0, 0), (1, 0), (2, 1), (3, 0)],
    "DGS": [(0, 0), (1, 1), (2, 0), (3, 2)],
    "SPD": [(0, 0), (1, 1), (2, 2), (3, 3)],
    "DPD": [(0, 0), (1, 1), (1, 2), (2, 3)],
}
_LABEL_W, _HEAD_H, _GAP = 150, 22, 6


def _save(img: Image.Image, out_path: str | Path) -> Path:
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    tmp.replace(path)
    return path


def make_contact_sheet(out_path: str | Path, seed: int = 0) -> Path:
    """PNG grid: one row per modality, one column per grade 0-3; clips as 3 frames side by side."""
    cell_w = 3 * FRAME_W + 2 * 2
    width = _LABEL_W + 4 * (cell_w + _GAP)
    height = _HEAD_H + 4 * (FRAME_H + _HEAD_H + _GAP)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for g in range(4):
        draw.text((_LABEL_W + g * (cell_w + _GAP) + 4, 4), f"grade {g}", fill=(230, 230, 230))
    for r, mod in enumerate(MODALITY_ORDER):
        y = _HEAD_H + r * (FRAME_H + _HEAD_H + _GAP)
        target = "SH" if mod in ("SGS", "DGS") else "EOSS (SH, PD)"
        draw.text((6, y + _HEAD_H + FRAME_H // 2 - 12), f"{mod}\ntarget {target}", fill=(230, 230, 230))
        for g, (sh, pd) in enumerate(_COLUMNS[mod]):
            item = render_item(example_spec(sh, pd, mod, seed=seed + g))
            x = _LABEL_W + g * (cell_w + _GAP)
            if len(item.frames) == 1:
                picks = [0]
                note = f"SH {sh} PD {pd}" + (
                    f" (still shows PD {item.shown_pd})" if mod == "SPD" and item.shown_pd != pd else ""
                )
            else:
                n = len(item.frames)
                if mod == "DPD":  # systolic peak, diastolic trough and a frame between them
                    peak = int(np.argmax((item.doppler & item.synovium).reshape(n, -1).sum(1)))
                    low = int(np.argmin(item.pulse))
                    mid = (peak + low) // 2 if abs(peak - low) > 1 else (peak + n // 2) % n
                    picks = sorted({peak, low, mid} | ({0, n - 1} - {peak, low, mid}))[:3]
                    picks = sorted(set(picks))
                else:
                    picks = [0, n // 2, n - 1]
                note = f"SH {sh} PD {pd}  frames {', '.join(map(str, picks))} of {n}"
            draw.text((x + 2, y + 5), note, fill=(200, 200, 200))
            for k, t in enumerate(picks):
                sheet.paste(Image.fromarray(item.frames[t]), (x + k * (FRAME_W + 2), y + _HEAD_H))
    return _save(sheet, out_path)


def make_realism_check(out_path: str | Path, seed: int = 0) -> Path:
    """PNG: a real GE LOGIQ power Doppler scan (pydicom-data US1_UNCR.dcm) beside a simulated SPD frame."""
    import pydicom
    from pydicom.data import get_testdata_file

    real = pydicom.dcmread(get_testdata_file("US1_UNCR.dcm")).pixel_array
    size = (2 * FRAME_W, 2 * FRAME_H)
    left = Image.fromarray(real).resize(size, Image.LANCZOS)
    item = render_item(example_spec(2, 3, "SPD", seed=seed))
    right = Image.fromarray(item.frames[0]).resize(size, Image.LANCZOS)
    out = Image.new("RGB", (2 * size[0] + 8, size[1] + 20), (24, 24, 24))
    out.paste(left, (0, 20))
    out.paste(right, (size[0] + 8, 20))
    draw = ImageDraw.Draw(out)
    draw.text((4, 4), "real: US1_UNCR.dcm (GE LOGIQ 700, power Doppler)", fill=(230, 230, 230))
    draw.text((size[0] + 12, 4), "simulated: SPD, SH 2 PD 3 (scanner-A)", fill=(230, 230, 230))
    return _save(out, out_path)


def make_variation_sheet(out_path: str | Path, seed: int = 0, n: int = 16, cols: int = 4) -> Path:
    """PNG grid of ``n`` widened stills (SGS and SPD, scanner-A, -B and -C), each at its own size.

    Each cell shows the frame at its own pixel size (no resampling) on a dark ground, headed by
    its profile, frame size, colour map and grey curve, so the spread of the widened simulator is
    visible at a glance.
    """
    from rascore.synth.profiles import PROFILES

    profiles = list(PROFILES)
    items = []
    for i in range(n):
        prof = profiles[0] if i % 4 < 2 else profiles[1 + (i // 4) % 2]
        mod = "SPD" if i % 2 else "SGS"
        sh, pd = [(0, 0), (1, 1), (2, 2), (3, 3), (2, 0), (1, 2), (3, 1), (2, 3)][i % 8]
        item = render_item(example_spec(sh, pd if mod == "SPD" else 0, mod, seed=seed + i, profile=prof))
        items.append(item)
    cell_w = max(it.frames.shape[2] for it in items) + _GAP
    cell_h = max(it.frames.shape[1] for it in items) + _HEAD_H + _GAP
    rows = -(-n // cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, item in enumerate(items):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        st = item.setting
        h, w = item.frames.shape[1:3]
        note = f"{item.spec.scanner_profile} {item.spec.modality} SH{item.spec.sh} PD{item.spec.pd} {w}x{h}"
        draw.text((x + 2, y + 2), note, fill=(220, 220, 220))
        draw.text(
            (x + 2, y + 11), f"{st.freq_mhz:.0f} MHz {st.grey_curve} {st.colour_map}", fill=(160, 160, 160)
        )
        sheet.paste(Image.fromarray(item.frames[0]), (x, y + _HEAD_H))
    return _save(sheet, out_path)

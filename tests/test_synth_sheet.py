"""The contact sheet and the realism check are written as real PNGs."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rascore.synth import make_contact_sheet, make_realism_check


def test_contact_sheet(tmp_path):
    path = make_contact_sheet(tmp_path / "sheet.png", seed=0)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 4 * 192 and img.shape[1] > 4 * 3 * 256
    chroma = img.max(axis=-1).astype(int) - img.min(axis=-1)
    rows = np.array_split(np.arange(img.shape[0]), 4)
    # colour appears only in the power Doppler rows (the lower half)
    assert (chroma[rows[0]] > 40).sum() == 0 and (chroma[rows[3]] > 40).sum() > 500
    assert not list(tmp_path.glob("*.tmp.png"))


def test_realism_check(tmp_path):
    path = make_realism_check(tmp_path / "real.png")
    img = Image.open(path)
    assert img.size[0] > 1000 and img.size[1] > 384


def test_variation_sheet(tmp_path):
    from rascore.synth.sheet import make_variation_sheet

    path = make_variation_sheet(tmp_path / "variation.png", seed=0, n=8, cols=4)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 2 * 160 and img.shape[1] > 4 * 200
    chroma = img.max(axis=-1).astype(int) - img.min(axis=-1)
    assert (chroma > 40).sum() > 200  # the SPD stills' colour

"""Simulated RA joint ultrasound cohort (stills and clips, greyscale and power Doppler) and readers.

Real RA ultrasound is not public, so the product ships this stand-in: anatomy of a dorsal
longitudinal MCP-like view, speckle image formation, synovium drawn by the EOSS SH geometry,
Doppler placed by the PD rules with distractors, three scanner profiles whose acquisitions vary
widely around them (variation.scan_setting), and simulated readers.
"""

from __future__ import annotations

from rascore.synth.cohort import SIZES, ItemSpec, example_spec, plan_cohort
from rascore.synth.grading import grade_from_masks
from rascore.synth.profiles import PROFILES, ScannerProfile
from rascore.synth.readers import READERS, Read, ReaderProfile, adjudicate, simulate_reads
from rascore.synth.render import SimItem, render_item, render_many, visible_grades
from rascore.synth.sheet import make_contact_sheet, make_realism_check, make_variation_sheet
from rascore.synth.variation import ScanSetting, scan_setting

__all__ = [
    "SIZES",
    "ItemSpec",
    "plan_cohort",
    "example_spec",
    "SimItem",
    "render_item",
    "render_many",
    "visible_grades",
    "grade_from_masks",
    "ReaderProfile",
    "READERS",
    "Read",
    "simulate_reads",
    "adjudicate",
    "make_contact_sheet",
    "make_realism_check",
    "make_variation_sheet",
    "ScanSetting",
    "scan_setting",
    "PROFILES",
    "ScannerProfile",
]

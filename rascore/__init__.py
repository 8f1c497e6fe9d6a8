"""RAScore: EULAR-OMERACT synovitis scoring of joint ultrasound, with models per modality."""

from __future__ import annotations

__version__ = "0.1.0"

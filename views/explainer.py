"""The one Explainer per project in this server process (networks stay loaded, explanations are
cached on disk) and its lock (Grad-CAM hooks are not thread-safe): the Predict & explain page and
the aided arm of a study read share them. Importing this module loads no model; the first call
imports torch."""

from __future__ import annotations

import threading

import streamlit as st


@st.cache_resource(show_spinner=False)
def _explainer(db: str, data: str, models: str, _project) -> tuple:
    from rascore.explain import Explainer
    from rascore.services import explain

    return Explainer(_project, device=explain.device_for(_project)), threading.Lock()


def shared_explainer(project) -> tuple:
    """(Explainer, lock) of this project, made once per server process and project paths."""
    settings = project.settings
    return _explainer(str(settings.db_path), str(settings.data_dir), str(settings.models_dir), project)

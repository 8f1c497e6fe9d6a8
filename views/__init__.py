"""Streamlit parts too big for one page script, shared by pages or split out of one (the Label
page's study and calibration reading, the Admin page's studies tab, the shared grading widgets).

Like ``ui.py`` it lives beside ``app.py``, not in ``pages/`` (Streamlit would list a module there
as a page) and not in ``rascore/`` (the library never imports Streamlit). A view reads from and
acts through ``rascore.services`` only."""

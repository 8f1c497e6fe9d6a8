"""What the Streamlit pages call: one module per page family, each free of Streamlit.

- ``session``: who is signed in, from the page's session state.
- ``labelling``: a reader's queue, grading, back and edit, the atlas.
- ``adjudication``: disagreements and the reference standard.
- ``admin``: users, roles and project settings.
- ``training``: queueing training, its live status, model versions on the Train page.
- ``dashboard``: per-grade AUC tables and figures for the Dashboard and Reader study pages.
- ``explain``: a prediction with its attributions for the Predict page.

The CLI calls the same functions, so a page and a command never disagree. Below this layer sit
the store (``rascore.store``), the statistics (``rascore.evaluate``) and the models.
"""

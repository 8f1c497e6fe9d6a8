"""What the Streamlit pages call: one module per page family, each free of Streamlit.

- ``session``: who is signed in, from the page's session state.
- ``labelling``: a reader's queue, grading, back and edit, the atlas.
- ``adjudication``: disagreements and the reference standard.
- ``admin``: users, roles and project settings.
- ``training``: queueing training, its live status, model versions on the Train page.
- ``dashboard``: per-grade AUC tables and figures for the Dashboard and Reader study pages.
- ``explain``: a prediction with its attributions for the Predict page.
- ``study_design``, ``study``, ``study_results``: AI-assisted reader studies (design; a reader's
  tasks, reads and the model's aid; the long table of reads for MRMC).
- ``calibration``: reader calibration sets, reads with feedback, the kappa stop rule.

The CLI calls the same functions, so a page and a command never disagree. Below this layer sit
the store (``rascore.store``), the statistics (``rascore.evaluate``) and the models.
"""

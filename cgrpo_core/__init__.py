"""cgrpo_core: the pure library of the Customized-GRPO reproduction (no prefect, no mlflow).

Where things are (README.md, "Layout"): ``config.py`` (the one experiment config), ``schema.py``,
``store.py``, ``lazy.py``; the algorithm (``advantages.py``, ``schedules.py``, ``flow_matching.py``,
``losses.py``, ``analysis.py``); the shared code path of both profiles (``policy/``, ``rewards/``, ``data/``,
``training/``, ``evaluation/``); and the toy profile's own home (``toy/``).
"""

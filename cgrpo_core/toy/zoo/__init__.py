"""The toy model zoo: tiny models of the real classes, trained in-project on the toy world.

- ``policy/``   the generator side: the toy VAE and UNO-style base policy in the FLUX.1-dev layout
  (``config``, ``data`` (training pairs), ``vae``, ``base_policy``, ``build``, ``checks`` (above-chance
  checks against the world's ground truth))
- ``rewards/``  the reward side: DINOv2 (DINO-Seg), DINO v1, CLIP, the aesthetic head, the segmenter, HPSv3
  (``config``, ``data``, one ``*_training`` module per model, ``checks``, ``build``)
- ``check.py``   the base policy checked with the zoo's own rewards (reads both halves)
- ``weights.py`` ``with_toy_weights``: an experiment config reading a built zoo
- ``standins.py`` model-free stand-in rewards (tests of the check logic)

See docs/zoo.md for the design, the measured behaviour and the time budget.
"""

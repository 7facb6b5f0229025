"""Data stage: DreamBench / ToyBench reader, SynCD reader, scorer, filter and report, and the toy world.

- ``dreambench.py``  the 750 (subject, class, prompt, reference image) evaluation items
- ``syncd.py``       SynCD metadata -> one table of sets (plus the problems found)
- ``scoring.py``     identity (pairwise, subject crops) and aesthetic scores, batched and resumable
- ``scorers.py``     scorers by name: model-free baselines; model scorers are registered by their area
- ``filtering.py``   thresholds + top-K ranking -> training pairs in the authors' format
- ``report.py``      counts per reason / category and score histograms
- ``toyworld/``      the procedurally generated toy SynCD + ToyBench (same on-disk formats)
"""

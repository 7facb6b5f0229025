"""Data: DreamBench's evaluation items, and SynCD read, scored and filtered into the training list.

- ``config.py``      DataConfig (the SynCD folder, scoring, filtering), DreamBenchConfig (the benchmark)
- ``dreambench.py``  the 750 (subject, class, prompt, reference image) evaluation items (and ToyBench's)
- ``syncd.py``       SynCD metadata -> one table of sets (plus the problems found)
- ``scoring.py``     identity (pairwise, subject crops) and aesthetic scores, batched and resumable
- ``scorers.py``     scorers by name: the model scorers and the model-free baselines
- ``filtering.py``   thresholds + top-K ranking -> training pairs in the authors' format
- ``report.py``      counts per reason / category and score histograms
- ``prepare.py``     the steps as whole-folder operations: tables on disk, input hashes, filter outputs

The toy world, written in the same formats, is :mod:`cgrpo_core.toy.world`.
"""

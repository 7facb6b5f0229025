"""Evaluation: benchmark items, their images with paired per-image noise, and sample grids.

- ``config.py``      EvalConfig: benchmark, metric models, the noise seed
- ``generation.py``  BenchItem, benchmark_items, image_seed, generate_samples (ODE, one generator per image)
- ``grid.py``        sample grids: reference | prompt | samples
- ``aggregate.py``   per-image scores -> means with item-bootstrap CIs (all, subject, kind, subject type)
- ``tables.py``      Tables 1-5, 7 (measured beside the paper's numbers) and 8 (compute); CSV + markdown
- ``figures.py``     Fig. 1 trade-off, Fig. 2 training curves, sample grids from scored images
"""

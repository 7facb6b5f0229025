"""Evaluation: benchmark items, their images with paired per-image noise, and sample grids.

- ``config.py``      EvalConfig: benchmark, metric models, the noise seed
- ``generation.py``  BenchItem, benchmark_items, image_seed, generate_samples (ODE, one generator per image)
- ``grid.py``        sample grids: reference | prompt | samples
"""

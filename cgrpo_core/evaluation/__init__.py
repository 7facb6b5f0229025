"""Evaluation: benchmark items, their images with paired per-image noise, metrics, tables, human studies.

- ``config.py``       EvalConfig: benchmark, metric models, the noise seed, prompts, batch size, processes
- ``generation.py``   BenchItem, benchmark_items, image_seed, generate_images/generate_samples (ODE, one
                      generator per image)
- ``engine.py``       the plan (one row per image), units of work generated and scored, resumable and
                      sharded across processes, checked for lost or duplicated images
- ``protocol.py``     the pinned protocol written out (MLflow params, under every table); metric model names
- ``grid.py``         sample grids: reference | prompt | samples
- ``aggregate.py``    per-image scores -> means with item-bootstrap CIs (all, subject, kind, subject type)
- ``tables.py``       Tables 1-5, 7 (measured beside the paper's numbers) and 8 (compute); CSV + markdown
- ``figures.py``      Fig. 1 trade-off, Fig. 2 training curves, sample grids from scored images
- ``human.py``        the blinded A/B human study: pair draw, export (page, key, hashes), answers checked
- ``human_stats.py``  its numbers: win/tie/loss with Wilson CIs, Fleiss' kappa, metric correlations, Fig. 5
"""

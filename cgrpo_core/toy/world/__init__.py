"""The toy world: seeded subjects with a visual identity, rendered into DreamBench's contexts.

- ``subjects.py``     classes and identities (shape, colour, pattern, secondary colour)
- ``raster.py``       the deterministic supersampled polygon rasteriser
- ``backgrounds.py``  one painter per DreamBench recontextualisation phrase
- ``parts.py``        class parts, accessories, companions
- ``render.py``       a subject in a view -> image + mask; property changes; degradations
- ``prompts.py``      DreamBench templates -> what to render; toy SynCD captions
- ``generate.py``     writes toy SynCD (with planted bad sets), ToyBench and the ground truth
- ``evaluate.py``     compares a filter pass with the ground truth
"""

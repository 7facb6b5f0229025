"""Tiny random checkpoints of the real model classes, saved in the real on-disk layouts (tests, toy zoo).

- ``config.py``      TinyPolicyConfig: the tiny FLUX/UNO's sizes
- ``policy.py``      the tiny FLUX.1-dev-layout checkpoint (transformer, VAE, CLIP + T5, tokenizers)
- ``rewards.py``     DINOv2, DINO v1, CLIP, the LAION head, Segformer, OWLv2 + SAM; their processors
- ``hpsv3.py``       a tiny Qwen2-VL HPSv3 in the released file layout
- ``tokenizers.py``  deterministic CLIP / T5 / Qwen2 tokenizers learned offline from a corpus
"""

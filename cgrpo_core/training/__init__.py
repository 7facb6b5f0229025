"""Training: the method sections of the config and what every trainer shares.

- ``config.py``  GRPOConfig (with AdvantageConfig and TDWConfig), SFTConfig, RPOConfig
- ``optim.py``   AdamW with a warm-up + cosine schedule, gradient-norm clipping, the training curve
- ``steps.py``   which sampling steps a GRPO update trains (paper: all; released: 14 of the first 24)

The trainers (SFT, RPO, and GRPO for naive and Customized-GRPO alike) build on these.
"""

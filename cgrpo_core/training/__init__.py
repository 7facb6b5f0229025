"""Training: the method sections of the config and what every trainer shares.

- ``config.py``  GRPOConfig (with AdvantageConfig and TDWConfig), SFTConfig, RPOConfig
- ``optim.py``   AdamW with a warm-up + cosine schedule, gradient-norm clipping, the training curve
- ``steps.py``   which sampling steps a GRPO update trains (paper: all; released: 14 of the first 24)
- ``grpo.py``    one GRPO step: rollouts, rewards, advantages (Eq. 8-12), clipped-surrogate updates;
                 naive and Customized-GRPO differ only in the advantage and TDW sections

The SFT and RPO trainers and the GRPO training loop (checkpoints, logging, data-parallel) build on these.
"""

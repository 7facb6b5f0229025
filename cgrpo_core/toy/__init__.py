"""The toy profile, in one home: a generated world and the tiny models trained on it.

Nothing here is on the paper profile's code path: the policy, rewards, data readers, trainers and
evaluation are shared (cgrpo_core/policy, rewards, data, training, evaluation) and only read what this
package writes, in the real on-disk formats.

- ``config.py``  ``ExperimentConfig.toy``: the world and the zoo (ToyConfig, ZooConfig, BaseCheckConfig)
- ``world/``     the procedurally generated toy SynCD + ToyBench (DreamBench's prompts, SynCD's layout)
- ``tiny/``      tiny random checkpoints of the real classes (FLUX/UNO, DINO, CLIP, HPSv3, ...) and their
  offline tokenizers: what tests load, and what the zoo starts from
- ``zoo/``       those models trained on the world: the policy half, the reward half, their checks
"""

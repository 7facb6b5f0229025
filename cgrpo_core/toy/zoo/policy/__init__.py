"""The toy zoo's generator side: the toy VAE and the UNO-style base policy, trained on the toy SynCD.

- ``config.py``       ZooPolicyConfig: the tiny checkpoint's sizes, the VAE's and the base policy's training
- ``data.py``         training images and (reference, target, caption) pairs, read from the toy SynCD
- ``vae.py``          the toy AutoencoderKL (L1 + edge + KL), its latent scale and shift
- ``base_policy.py``  flow-matching pretraining of the whole tiny FLUX transformer (UNO's recipe)
- ``build.py``        both in one call, into a FLUX.1-dev-layout folder with a manifest; its content key
- ``checks.py``       above-chance checks of a policy's samples against the world's ground truth
"""

"""The toy zoo's reward side: every reward and metric model of the toy profile, trained on the toy world.

- ``config.py``              ZooRewardsConfig: one section per model, the corpus world, the checks;
                             hpsv3_config (the rewards' config reading a built toy HPSv3)
- ``data.py``                views (images, masks, captions, labels) of the toy SynCD, ToyBench, other worlds
- ``dino_training.py``       DINOv2 (DINO-Seg) and DINO v1 by multi-view contrastive learning
- ``clip_training.py``       CLIP by its contrastive loss on toy images and captions
- ``aesthetic_head.py``      the LAION-format aesthetic head on the toy CLIP
- ``segmenter_training.py``  the subject Segformer of DINO-Seg
- ``prompt_renders.py``      renders of training subjects as DreamBench prompts ask (the toy HPSv3's data)
- ``hpsv3_training.py``      the toy HPSv3 by a Bradley-Terry loss on preference boxes (+ captioning)
- ``checks.py``              each model checked against held-out ground truth
- ``build.py``               all of them into one folder with a manifest; its content key
"""

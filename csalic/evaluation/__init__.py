"""Evaluation: coding a dataset with a codec or an anchor and scoring it (bpp, PSNR, mAP@0.5),
BD-rate and BD-mAP, complexity, and the paper's tables and figures.

It uses the codec, the datasets and the task networks, never the study's orchestration.
"""

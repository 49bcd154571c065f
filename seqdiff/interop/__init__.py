"""Public checkpoints in, seqdiff runs out (and back): pure state-dict maps with shape checks.

Each format module (``mdlm``, ``caduceus``, ...) maps a published Hugging Face layout onto a
seqdiff backbone and back, reading ``config.json`` and the tensor files only: a checkpoint's
own Python (``trust_remote_code``) is never imported or run. :mod:`seqdiff.interop.registry`
names the formats by ``model_type``; :mod:`seqdiff.interop.runs` turns an import into a normal
run directory and a run into an HF-style directory.
"""

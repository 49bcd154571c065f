"""Importers that turn public checkpoints (local Hugging Face directories) into seqdiff runs.

Each reads the directory's ``config.json`` and tensors (safetensors, or a ``.bin`` that loads
with ``torch.load(weights_only=True)``), maps them onto a seqdiff backbone by name with shape
checks, and writes a normal run directory; the checkpoint's own Python is never imported.
"""

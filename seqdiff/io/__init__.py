"""On-disk formats: the checkpoint directory (importable without the trainer) and the
nested-state flattening it stores optimizer and trainer state with."""

"""Shared test helpers: enumerable toys and exact denoisers, tiny run configs, tiny
genomes, tokenizer files and pair files (imported as ``support.<module>``)."""

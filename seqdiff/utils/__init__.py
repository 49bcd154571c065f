"""Small shared helpers (seeding, atomic file writes, state flattening, instantiation)."""

"""The Hydra configuration tree, installed as ``seqdiff.configs`` (see pyproject.toml); the
CLI composes it (``seqdiff.cli.main.config_dir``). No code lives here."""

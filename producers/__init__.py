"""What node systems use: an importable SDK and the CLI commands built on it."""

"""Helpers shared by every subpackage: serialization and argument validation."""

"""The catalog service of OTV."""

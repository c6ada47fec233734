"""The reporting service of OTV."""

"""The booking service of OTV."""

"""The notifier service of OTV."""

"""Training: losses now; the Lightning module, data module and recipe follow."""

"""Rerunning the paper's experiments: grids of training runs, a results database, the paper's tables."""

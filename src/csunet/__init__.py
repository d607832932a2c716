"""csunet."""

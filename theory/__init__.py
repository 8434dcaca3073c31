"""Proposition 3.1 (invariance-induced spectral decay), checked symbolically and numerically."""

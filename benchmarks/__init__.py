"""Benchmarks of the fast training and evaluation paths against a plain PyTorch reference."""

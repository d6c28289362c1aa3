"""Training utilities for pare-demo (synthetic data generation and training)."""

"""Exact event-based simulation and BATS gradients."""

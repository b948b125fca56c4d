"""Thin Prefect flows: each wires library functions from ``devicerisk`` into tasks."""

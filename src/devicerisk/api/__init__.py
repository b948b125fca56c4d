"""The fraud team's risk lookup service: a FastAPI app over the serving snapshots (``create_app``)."""

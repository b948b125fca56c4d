"""The fraud team's risk lookups: serving snapshots and real-time scoring."""

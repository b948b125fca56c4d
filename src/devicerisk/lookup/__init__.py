"""The fraud team's risk lookups: serving snapshots loaded into immutable, indexed views that switch atomically
when a new snapshot is published, masked references to pseudonyms, resolution of the raw identifiers an
investigator gives, and real-time scoring of one event. The views read the serving folder only: never the lake,
the warehouse or a writer's file."""

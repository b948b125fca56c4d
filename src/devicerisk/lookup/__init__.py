"""The lookup service's data layer: serving snapshots loaded into immutable, indexed views that switch atomically
when a new snapshot is published, masked references to pseudonyms, and resolution of the raw identifiers an
investigator gives. It reads the serving folder only: never the lake, the warehouse or a writer's file."""

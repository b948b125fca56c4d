"""The lookup service's data layer: serving snapshots loaded into immutable, indexed views that switch atomically
when a new snapshot is published, masked references to pseudonyms, resolution of the raw identifiers an
investigator gives, and score now (one raw event scored in real time, in memory). It reads the serving folder,
the signal log and the models: never the warehouse or a writer's file."""

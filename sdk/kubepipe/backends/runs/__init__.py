"""Run records: the run.json of a local run, its step notes, listing local and remote runs, pruning."""

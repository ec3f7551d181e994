"""Templates that `kubepipe init` writes."""

"""Monitoring from served traffic: the prediction log (written by `kubepipe serve`, read by
load-data), live quality from delayed labels, and the per-window monitoring report."""

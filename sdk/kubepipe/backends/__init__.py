"""Backends: local (kfp.local), kubeflow (kfp.Client), vertex (aiplatform)."""

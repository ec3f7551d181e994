"""Drift-triggered retraining: the `trigger-retrain` component and the logic behind it."""

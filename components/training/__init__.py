"""Training: the `train-torch` component, built-in models and the Model artifact format.

Nothing heavy is imported here; torch loads inside the functions that need it.
"""

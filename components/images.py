"""Default runtime image of the built-in components; target profiles override it."""

__all__ = ["RUNTIME_IMAGE"]

# The compiler replaces this with the profile's runtime image (pinned by digest).
RUNTIME_IMAGE = "python:3.11-slim"

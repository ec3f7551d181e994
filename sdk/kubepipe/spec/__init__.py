"""Spec layer: pydantic models of the YAML, a loader that keeps line:col, profiles."""

from kubepipe.spec.loader import LoadedPipeline, load_pipeline, load_pipeline_text
from kubepipe.spec.models import Pipeline, Step
from kubepipe.spec.names import pipeline_name
from kubepipe.spec.profiles import Profile, load_profile

__all__ = ["LoadedPipeline", "load_pipeline", "load_pipeline_text", "Pipeline", "Step", "pipeline_name", "Profile",
           "load_profile"]

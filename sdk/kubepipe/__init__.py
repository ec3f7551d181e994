"""kubepipe: declarative pipeline-as-code SDK on Kubeflow Pipelines."""

__version__ = "0.1.0"

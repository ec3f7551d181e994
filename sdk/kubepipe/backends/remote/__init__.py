"""The remote backends: submit to and follow runs on Kubeflow Pipelines (kfp.Client) and Vertex AI."""

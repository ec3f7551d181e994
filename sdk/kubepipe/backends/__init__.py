"""Where a compiled pipeline runs: local/ (kfp.local), remote/ (Kubeflow, Vertex), runs/, schedules/, packaging/."""

"""The local backend: runs the compiled IR on kfp.local, with its kfp.local patches and crash safety."""

"""Data: manifests, corpora readers and synthetic corpora."""

"""Retrieval (hybrid BM25 + dense, filters) and evidence selection."""

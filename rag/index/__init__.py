"""Chunking, embedding, the Chroma store, building the index, what it holds."""

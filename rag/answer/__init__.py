"""The answer pipeline, prompts, answer types, citations and the support check."""

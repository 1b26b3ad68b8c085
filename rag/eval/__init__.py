"""Gold questions, metrics, the eval run and its reports."""

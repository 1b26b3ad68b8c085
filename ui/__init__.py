"""The Gradio chat page: `python -m ui`. `ui.render` is pure HTML (no Gradio import);
`ui.app` holds the layout and thin handlers over the `rag` library."""

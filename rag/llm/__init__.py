"""The answering backends behind one small interface: Ollama and the embedded llama.cpp model."""

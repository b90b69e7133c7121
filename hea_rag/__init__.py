"""hea-rag: question answering over High Entropy Alloy paper abstracts."""

__version__ = "0.1.0"

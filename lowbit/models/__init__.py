"""Real-model workloads: a NumPy forward pass of all-MiniLM-L6-v2 (the `models` extra ships its weights)."""

from .minilm import MiniLM, float32_linear, load_minilm, model_dir

__all__ = ["MiniLM", "float32_linear", "load_minilm", "model_dir"]

"""deeplocal: run DeepSeek-class LLMs privately, on hardware you own."""

__version__ = "0.1.0"

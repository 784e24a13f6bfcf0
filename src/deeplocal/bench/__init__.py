"""`deeplocal bench`: load any OpenAI-compatible endpoint and measure it with vLLM's metric definitions."""

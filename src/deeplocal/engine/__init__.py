"""Engines: a Backend turns a GenerationRequest into a stream of Chunks."""

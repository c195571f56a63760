"""Embedding: run a trained encoder over a data set and store its features."""

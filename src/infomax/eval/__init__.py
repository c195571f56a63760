"""Evaluation: kNN and probe accuracies, retrieval scores, the prior check, baselines, grids and maps."""

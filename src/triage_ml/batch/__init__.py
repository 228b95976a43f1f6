"""Scoring files and Spark DataFrames outside the HTTP API: the same model, the same fields."""

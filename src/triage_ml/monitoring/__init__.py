"""Watching the model in production: drift against the training set, and spikes of similar messages."""

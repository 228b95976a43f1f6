"""The label store: messages, predictions, agent decisions, labels with provenance, disputes."""

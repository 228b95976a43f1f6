"""Agent decisions become labels; disputes; the training-set export."""

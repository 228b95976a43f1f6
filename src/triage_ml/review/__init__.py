"""Lead reviews in Label Studio: disputes pushed as tasks, annotations pulled back as gold labels,
active learning for the review queue, and lead agreement."""

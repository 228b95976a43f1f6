"""Training pipeline: config, cross-validation, metrics, plots, MLflow tracking and registry."""

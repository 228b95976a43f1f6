"""The triage-ml scoring service (FastAPI). ``serving.main:create_app`` assembles it."""

"""One validated settings object, read from the environment (prefix ``TRIAGE_``) and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as ``TRIAGE_<NAME>`` in the environment or ``.env``."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    environment: str = Field("development", description="development, ci or production")
    mlruns_dir: Path = Field(Path("mlruns"), description="local MLflow store: SQLite db + artifacts")
    tracking_uri: str | None = Field(None, description="any MLflow tracking URI; default: SQLite in mlruns_dir")
    registry_uri: str | None = Field(None, description="model registry URI; default: the tracking URI")
    experiment_name: str = "triage-ml"
    registered_model_name: str = "triage-ml"
    model_alias: str = "champion"
    encoder: str = Field("all-MiniLM-L6-v2", description="a sentence-transformers folder or model name")
    cache_dir: Path = Field(Path.home() / ".cache" / "triage-ml", description="embedding cache location")
    torch_threads: int | None = Field(None, description="intra-op threads for the encoder; default: torch's")

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.mlruns_dir.resolve() / 'mlflow.db').as_posix()}"

    def artifact_root(self) -> str:
        """Where new experiments keep artifacts when the tracking store is our local default."""
        return (self.mlruns_dir.resolve() / "artifacts").as_uri()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

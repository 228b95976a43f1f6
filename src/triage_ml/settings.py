"""One validated settings object, read from the environment (prefix ``TRIAGE_``) and ``.env``."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage_ml.errors import ConfigError

Environment = Literal["development", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "production")
# `triage-ml dev-keys` writes keys that begin with this, so production can recognise and refuse them.
DEV_KEY_PREFIX = "triage-dev-"
# Production's least length for API keys and the webhook secret: 128 bits as hex, 192 as token_urlsafe(24).
MIN_PRODUCTION_SECRET_CHARS = 32
_NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as ``TRIAGE_<NAME>`` in the environment or ``.env``."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)  # errors never show a key

    environment: Environment = Field("development", description=(
        "development or production; production refuses to start with development keys, keys or a webhook "
        "secret under 32 characters, a webhook URL without its secret, or rate limiting off"))
    mlruns_dir: Path = Field(Path("mlruns"), description="local MLflow store: SQLite db + artifacts")
    tracking_uri: str | None = Field(None, description="any MLflow tracking URI; default: SQLite in mlruns_dir")
    registry_uri: str | None = Field(None, description="model registry URI; default: the tracking URI")
    experiment_name: str = "triage-ml"
    registered_model_name: str = "triage-ml"
    model_alias: str = "champion"
    encoder: str = Field("all-MiniLM-L6-v2", description="a sentence-transformers folder or model name")
    cache_dir: Path = Field(Path.home() / ".cache" / "triage-ml", description="embedding cache location")
    torch_threads: int | None = Field(None, description="intra-op threads for the encoder; default: runtime's")
    encoder_backend: str = Field("auto", description="auto (onnx when exported), torch, onnx or onnx-int8")

    # -- scoring service ----------------------------------------------------------------------------
    api_keys: SecretStr | None = Field(None, description="comma-separated role:key pairs")
    routing_path: Path = Field(Path("serving/routing.yaml"), description="the escalation map")
    max_batch: int = Field(256, ge=1, description="messages per /v1/score request")
    max_text_chars: int = Field(10_000, ge=1)
    max_thread_turns: int = Field(20, ge=1, description="earlier turns a scored message may carry (thread)")
    max_clock_skew_seconds: float = Field(300.0, ge=0, description=(
        "how far past this server's clock a message's created_at may be: later ones are refused (422 in the "
        "API, a reject row in score-batch), and spike alerts never run further ahead of the clock"))
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request bodies above this get 413, declared "
                                "or chunked")
    body_timeout_seconds: float = Field(30.0, gt=0, description="a request body not received whole this long "
                                        "after its first read gets 408, and the connection closes")
    model_poll_seconds: float = Field(30.0, ge=0, description="how often the alias is checked; 0: never")
    routing_poll_seconds: float = Field(2.0, gt=0, description="how often the map file is checked")
    batch_wait_ms: float = Field(0.0, ge=0, description="extra wait for company before encoding a batch; "
                                 "requests arriving while a batch runs are batched anyway")
    batch_max_messages: int = Field(128, ge=1, description="messages encoded together at most")
    batch_max_chars: int = Field(32_000, ge=1000, description="characters encoded together at most (a message "
                                 "counts up to 1,000: the encoder reads 256 tokens); callers take turns, a slice "
                                 "each, so one caller's long batch cannot stall another's message")
    rate_limit: str | None = Field("3000/minute", description="requests per API key (limits' notation, e.g. "
                                   "'50/second;3000/minute'), per worker process; past it 429 with Retry-After. "
                                   "'off': unlimited")

    shadow_alias: str | None = Field(None, description=(
        "also score every batch with the model under this alias (e.g. challenger), off the response path, "
        "and count and record where it disagrees; responses never change"))
    spike_alerts: bool = Field(True, description="watch actionable traffic for spikes (GET /v1/alerts); off "
                               "saves the similarity encoding of every actionable message")
    spike_window_seconds: float = Field(900.0, gt=0, description="spike alerts: the rolling window per brand")
    spike_similarity: float = Field(0.7, gt=0, lt=1, description="spike alerts: cosine at which two messages "
                                    "count as the same problem")
    spike_min_cluster: int = Field(6, ge=2, description="spike alerts: similar messages that always raise one")
    spike_crisis_min: float = Field(4.0, gt=0, description="spike alerts: summed crisis risk that always raises "
                                    "one")

    # -- label store and disputes --------------------------------------------------------------------
    database_url: str = Field("sqlite:///data/triage.db",
                              description="label store: sqlite:///file.db or postgresql+psycopg://user@host/db")
    database_auto_migrate: bool = Field(True, description="bring the store's schema up to date on start")
    dispute_confidence: float = Field(0.9, gt=0.5, lt=1.0, description=(
        "a prediction is confident at p >= this or p <= 1 - this; an agent label against it opens a dispute"))
    dispute_crisis_high: float = Field(0.8, gt=0, lt=1, description=(
        "crisis_risk at or above which a decision that does not escalate opens a dispute"))
    dispute_crisis_low: float = Field(0.02, gt=0, lt=1, description=(
        "crisis_risk at or below which an escalation to PR/legal/safety opens a dispute"))
    max_decisions: int = Field(500, ge=1, description="decisions per /v1/feedback request")

    # -- privacy ----------------------------------------------------------------------------------------
    retention_days: float | None = Field(None, gt=0, description=(
        "message texts older than this are erased (checked hourly by the service, or `triage-ml db purge`); "
        "unset: kept"))

    # -- team operations ------------------------------------------------------------------------------
    sla_tier1_minutes: float = Field(60.0, gt=0, description="a tier-1 message's first decision is due within this")
    sla_tier2_minutes: float = Field(1440.0, gt=0, description="a tier-2 message's first decision is due within this")

    # -- lead reviews in Label Studio ----------------------------------------------------------------
    label_studio_url: str = Field("http://127.0.0.1:8080", description="the Label Studio server leads use")
    label_studio_api_key: SecretStr | None = Field(None, description="a Label Studio access token")
    label_studio_webhook_url: str | None = Field(None, description=(
        "where Label Studio reaches this service's /v1/webhooks/label-studio; when set (with the secret), "
        "`review push` registers the webhook"))
    review_leads_per_task: int = Field(1, ge=1, le=10, description=(
        "leads who must answer a task before it closes (Label Studio's overlap, set on the projects we create; "
        "leads may change it there, and pull follows the project's value)"))
    label_studio_webhook_secret: SecretStr | None = Field(None, description=(
        "shared secret Label Studio sends in X-Triage-Webhook-Secret; the receiver refuses other requests"))

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_known(cls, value: object) -> object:
        name = value.strip().lower() if isinstance(value, str) else value
        if name not in ENVIRONMENTS:
            raise ValueError(f"TRIAGE_ENVIRONMENT {value!r} is not one we know: use development (also for tests "
                             "and CI) or production")
        return name

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "none", "off"):
            return None
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"rate_limit {value!r} is not a rate like '3000/minute' or '50/second;3000/minute' "
                             "(or 'off')") from None
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _safe_for_production(self) -> Settings:
        """Production refuses what ``unsafe_for_production`` finds; development takes it as it is."""
        problems = self.unsafe_for_production() if self.environment == "production" else []
        if problems:
            secrets_to_make = any(not p.startswith("TRIAGE_RATE_LIMIT") for p in problems)
            hint = f" (make a key or secret with {_NEW_SECRET})" if secrets_to_make else ""
            raise ValueError(f"TRIAGE_ENVIRONMENT=production refuses to start: {'; '.join(problems)}{hint}")
        return self

    def unsafe_for_production(self) -> list[str]:
        """What production refuses, each problem naming the setting and the fix (never a key's value)."""
        problems = []
        pairs = self.keys()
        if dev := [role for role, key in pairs if is_dev_key(key)]:
            problems.append(f"TRIAGE_API_KEYS holds development keys (`triage-ml dev-keys`) for {', '.join(dev)}: "
                            "set keys of your own")
        if short := [role for role, key in pairs if not is_dev_key(key) and len(key) < MIN_PRODUCTION_SECRET_CHARS]:
            problems.append(f"TRIAGE_API_KEYS has keys shorter than {MIN_PRODUCTION_SECRET_CHARS} characters for "
                            f"{', '.join(short)}: set longer ones")
        secret = self.label_studio_webhook_secret.get_secret_value() if self.label_studio_webhook_secret else ""
        if self.label_studio_webhook_url and not secret:
            problems.append("TRIAGE_LABEL_STUDIO_WEBHOOK_URL is set without TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET, so "
                            "the receiver would refuse every event: set the secret or unset the URL")
        elif secret and len(secret) < MIN_PRODUCTION_SECRET_CHARS:
            problems.append(f"TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET is shorter than {MIN_PRODUCTION_SECRET_CHARS} "
                            "characters: set a longer one")
        if self.rate_limit is None:
            problems.append("TRIAGE_RATE_LIMIT is off: set a rate per key, e.g. 3000/minute (the default)")
        return problems

    def keys(self) -> list[tuple[str, str]]:
        """(role, key) pairs; empty when none are configured."""
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else []

    def model_uri(self) -> str:
        return f"models:/{self.registered_model_name}@{self.model_alias}"

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.mlruns_dir.resolve() / 'mlflow.db').as_posix()}"

    def artifact_root(self) -> str:
        """Where new experiments keep artifacts when the tracking store is our local default."""
        return (self.mlruns_dir.resolve() / "artifacts").as_uri()


ROLES = ("scorer", "agent", "lead", "admin")


def parse_api_keys(raw: str) -> list[tuple[str, str]]:
    """``scorer:k1,admin:k2`` -> [("scorer", "k1"), ("admin", "k2")]; the message never shows a key."""
    pairs = []
    for i, item in enumerate(p.strip() for p in raw.split(",") if p.strip()):
        role, sep, key = (part.strip() for part in item.partition(":"))
        if not sep or role not in ROLES or len(key) < 16:
            raise ValueError(f"TRIAGE_API_KEYS entry {i + 1} must be role:key with role one of "
                             f"{', '.join(ROLES)} and a key of at least 16 characters")
        pairs.append((role, key))
    return pairs


def dev_key() -> str:
    """A new development API key, marked as one (``DEV_KEY_PREFIX``) so that production refuses it."""
    return f"{DEV_KEY_PREFIX}{secrets.token_urlsafe(24)}"


def is_dev_key(key: str) -> bool:
    return key.startswith(DEV_KEY_PREFIX)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of the environment and ``.env``; a ConfigError naming each refused setting and its fix."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(settings_problems(exc)) from None


def settings_problems(exc: ValidationError) -> str:
    """One line: each refused setting as ``TRIAGE_<NAME>: problem`` (a whole-settings check names its own)."""
    problems = []
    for err in exc.errors():
        name = "_".join(str(p) for p in err["loc"]).upper()
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"TRIAGE_{name}: {message}" if name and not message.startswith(f"TRIAGE_{name}") else message)
    return "; ".join(problems)

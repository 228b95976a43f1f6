"""Settings.environment: production refuses development keys, a webhook without its secret and the other
unsafe settings, each by name with its fix; development takes them as they are."""

import os
import secrets

import pytest
from pydantic import ValidationError

from triage_ml.errors import ConfigError
from triage_ml.settings import DEV_KEY_PREFIX, ROLES, Settings, dev_key, get_settings, is_dev_key, parse_api_keys

STRONG = {role: secrets.token_urlsafe(32) for role in ROLES}


def keys(pairs: dict[str, str]) -> str:
    return ",".join(f"{role}:{key}" for role, key in pairs.items())


@pytest.fixture(autouse=True)
def no_outside_settings(tmp_path, monkeypatch):
    """Only what a test passes: no .env from the working directory, no TRIAGE_ variables of the shell."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("TRIAGE_")]:
        monkeypatch.delenv(name)


def production(**fields) -> Settings:
    return Settings(environment="production", **{"api_keys": keys(STRONG), **fields})


def refusal(**fields) -> str:
    with pytest.raises(ValidationError) as caught:
        production(**fields)
    return str(caught.value)


def test_development_keys_carry_a_marker_production_recognises():
    key = dev_key()
    assert key.startswith(DEV_KEY_PREFIX) and is_dev_key(key) and len(key) >= 32
    assert not any(is_dev_key(k) for k in STRONG.values())
    dev = keys({role: dev_key() for role in ROLES})
    assert Settings(api_keys=dev).environment == "development"  # development takes them
    message = refusal(api_keys=dev)
    assert "TRIAGE_API_KEYS" in message and "development keys" in message and "scorer, agent, lead, admin" in message
    assert "token_urlsafe" in message  # the fix: keys of your own
    assert dev not in message and all(k not in message for _, k in parse_api_keys(dev))  # never a key


def test_production_takes_a_safe_configuration():
    settings = production(label_studio_webhook_url="https://triage.example.com/v1/webhooks/label-studio",
                          label_studio_webhook_secret=secrets.token_urlsafe(32))
    assert settings.environment == "production" and settings.unsafe_for_production() == []


def test_a_webhook_url_without_its_secret_is_refused_in_production():
    url = "https://triage.example.com/v1/webhooks/label-studio"
    assert Settings(label_studio_webhook_url=url).label_studio_webhook_url == url  # development takes it
    message = refusal(label_studio_webhook_url=url)
    assert "TRIAGE_LABEL_STUDIO_WEBHOOK_URL" in message and "TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET" in message
    short = refusal(label_studio_webhook_url=url, label_studio_webhook_secret="changethis-0123")
    assert "TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET is shorter than 32 characters" in short


def test_short_keys_and_no_rate_limit_are_refused_in_production():
    short = {**STRONG, "lead": "lead-key-0123456789"}  # 19 characters: enough for development
    assert Settings(api_keys=keys(short)).keys()
    message = refusal(api_keys=keys(short))
    assert "TRIAGE_API_KEYS" in message and "shorter than 32 characters" in message and "lead" in message
    assert "lead-key-0123456789" not in message
    assert Settings(rate_limit="off").rate_limit is None
    message = refusal(rate_limit="off")
    assert "TRIAGE_RATE_LIMIT" in message and "3000/minute" in message


def test_every_problem_is_named_at_once():
    message = refusal(api_keys=keys({"scorer": dev_key()}), rate_limit="off",
                      label_studio_webhook_url="https://triage.example.com/hook")
    assert all(name in message for name in ("TRIAGE_API_KEYS", "TRIAGE_RATE_LIMIT", "TRIAGE_LABEL_STUDIO_WEBHOOK"))


@pytest.mark.parametrize("value", ["ci", "staging", "prod"])
def test_unknown_environments_are_refused_by_name(value):
    with pytest.raises(ValidationError, match=r"TRIAGE_ENVIRONMENT .* development .* or production"):
        Settings(environment=value)
    assert Settings(environment=" Production ", api_keys=keys(STRONG)).environment == "production"


def test_settings_from_the_environment_fail_as_one_config_error(monkeypatch):
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "production")
    monkeypatch.setenv("TRIAGE_API_KEYS", keys({"scorer": dev_key()}))
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="TRIAGE_ENVIRONMENT=production refuses") as caught:
            get_settings()
        assert "TRIAGE_API_KEYS" in str(caught.value) and "\n" not in str(caught.value)
        monkeypatch.setenv("TRIAGE_MAX_BATCH", "0")
        with pytest.raises(ConfigError, match="TRIAGE_MAX_BATCH: Input should be greater than or equal to 1"):
            get_settings()
    finally:
        get_settings.cache_clear()

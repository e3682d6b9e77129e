"""Settings as an operator gives them: a `.env` file in the working directory, overridden by
the real environment, and defaults that follow ENVIRONMENT."""

from __future__ import annotations

from pathlib import Path

import pytest

from primetrade.settings import Settings

SECRET = "a-private-production-secret-0123456789abcdef"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No settings from the surrounding environment or a `.env` file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_a_dot_env_file_in_the_working_directory_is_read(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().rate_limit_user == "1200/minute"  # the default, before the file exists
    (tmp_path / ".env").write_text(
        "# an operator's file\nRATE_LIMIT_USER=7/minute\nDB_POOL_SIZE=3\nTRUSTED_PROXIES=10.0.0.1\n"
    )
    settings = Settings()
    assert settings.rate_limit_user == "7/minute"
    assert settings.db_pool_size == 3
    assert settings.trusted_proxies == ["10.0.0.1"]


def test_a_real_environment_variable_wins_over_the_dot_env_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("RATE_LIMIT_USER=7/minute\nDB_POOL_SIZE=3\n")
    clean_env.setenv("RATE_LIMIT_USER", "9/minute")
    settings = Settings()
    assert settings.rate_limit_user == "9/minute"
    assert settings.db_pool_size == 3  # what the environment does not say still comes from .env


@pytest.mark.parametrize(
    ("environment", "required"),
    [("production", True), ("development", False), ("test", False)],
)
def test_email_verification_follows_the_environment_when_unset(
    clean_env: pytest.MonkeyPatch, environment: str, required: bool
) -> None:
    clean_env.setenv("ENVIRONMENT", environment)
    clean_env.setenv("SECRET_KEY", SECRET)
    settings = Settings()
    assert settings.require_email_verification is None
    assert settings.email_verification_required is required


@pytest.mark.parametrize(
    ("environment", "value", "required"),
    [("production", "false", False), ("development", "true", True), ("test", "1", True)],
)
def test_require_email_verification_overrides_the_environment(
    clean_env: pytest.MonkeyPatch, environment: str, value: str, required: bool
) -> None:
    clean_env.setenv("ENVIRONMENT", environment)
    clean_env.setenv("SECRET_KEY", SECRET)
    clean_env.setenv("REQUIRE_EMAIL_VERIFICATION", value)
    assert Settings().email_verification_required is required


def test_production_can_be_configured_from_the_dot_env_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"ENVIRONMENT=production\nSECRET_KEY={SECRET}\n")
    settings = Settings()
    assert settings.secret_key == SECRET
    assert settings.email_verification_required is True
    assert settings.effective_log_format == "json"

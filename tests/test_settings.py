"""Settings: derived defaults, the kept secret key, and refusal of unsafe values."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from trapline.settings import SettingsError, load_settings


def test_defaults_live_in_the_data_dir(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path / "data")
    data = (tmp_path / "data").resolve()
    assert data.is_dir()
    assert settings.database_url == f"sqlite:///{data / 'trapline.db'}"
    assert settings.object_store_url == (data / "objects").as_uri()
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.is_sqlite


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRAPLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRAPLINE_PORT", "9123")
    monkeypatch.setenv("TRAPLINE_API_BODY_MAX_SIZE", "2MiB")
    settings = load_settings()
    assert settings.data_dir == tmp_path.resolve()
    assert settings.public_url == "http://127.0.0.1:9123"
    assert settings.api_body_max_size == 2 * 1024 * 1024


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path):
    first = load_settings(data_dir=tmp_path).secret_key
    second = load_settings(data_dir=tmp_path).secret_key
    assert first is not None and second is not None
    assert first.get_secret_value() == second.get_secret_value()
    assert len(first.get_secret_value()) >= 32
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert not list(tmp_path.glob(".secret_key.*")), "temporary files are cleaned up"


def test_given_secret_key_is_used(tmp_path: Path):
    key = "k" * 40
    settings = load_settings(data_dir=tmp_path, secret_key=key)
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == key
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("key", ["changeme", "secret", "short-but-not-placeholder"])
def test_weak_secret_keys_are_refused(tmp_path: Path, key: str):
    with pytest.raises(SettingsError, match="TRAPLINE_SECRET_KEY is too weak"):
        load_settings(data_dir=tmp_path, secret_key=key)


def test_world_readable_secret_file_is_refused(tmp_path: Path):
    load_settings(data_dir=tmp_path)
    os.chmod(tmp_path / "secret_key", 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_settings(data_dir=tmp_path)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_in_memory_sqlite_is_refused(tmp_path: Path, url: str):
    with pytest.raises(SettingsError, match="in-memory SQLite"):
        load_settings(data_dir=tmp_path, database_url=url)


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "nonsense", "oracle://x"])
def test_unsupported_databases_are_refused(tmp_path: Path, url: str):
    with pytest.raises(SettingsError, match="TRAPLINE_DATABASE_URL"):
        load_settings(data_dir=tmp_path, database_url=url)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db/trapline", "postgresql+psycopg://u:p@db/trapline"),
        ("postgresql://u@db:5433/trapline", "postgresql+psycopg://u@db:5433/trapline"),
        ("postgresql+psycopg://u@db/trapline", "postgresql+psycopg://u@db/trapline"),
    ],
)
def test_postgres_urls_use_psycopg3(tmp_path: Path, given: str, expected: str):
    assert load_settings(data_dir=tmp_path, database_url=given).database_url == expected


@pytest.mark.parametrize("url", ["ftp://x/y", "s3://", "file://", "objects"])
def test_unsupported_object_stores_are_refused(tmp_path: Path, url: str):
    with pytest.raises(SettingsError, match="TRAPLINE_OBJECT_STORE_URL"):
        load_settings(data_dir=tmp_path, object_store_url=url)


def test_s3_object_store_is_accepted(tmp_path: Path):
    assert (
        load_settings(data_dir=tmp_path, object_store_url="s3://bucket/prefix").object_store_url == "s3://bucket/prefix"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("errors.example.com", "absolute http"),
        ("ftp://errors.example.com", "absolute http"),
        ("https://example.com/trapline", "has a path"),
    ],
)
def test_bad_public_urls_are_refused(tmp_path: Path, url: str, message: str):
    with pytest.raises(SettingsError, match=message):
        load_settings(data_dir=tmp_path, public_url=url)


def test_public_url_loses_its_trailing_slash(tmp_path: Path):
    assert load_settings(data_dir=tmp_path, public_url="https://errors.example.com/").public_url == (
        "https://errors.example.com"
    )


def test_wildcard_host_shows_a_reachable_url(tmp_path: Path):
    assert load_settings(data_dir=tmp_path, host="0.0.0.0", port=80).public_url == "http://127.0.0.1:80"


def test_unwritable_data_dir_is_refused(tmp_path: Path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(SettingsError, match="not writable"):
        load_settings(data_dir=locked)


def test_tiny_body_limit_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="API_BODY_MAX_SIZE"):
        load_settings(data_dir=tmp_path, api_body_max_size="100B")


def test_data_dir_that_cannot_be_created_is_refused(tmp_path: Path):
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(SettingsError, match="cannot be created"):
        load_settings(data_dir=tmp_path / "a-file" / "data")


def test_an_old_sqlite_is_refused_with_what_to_do(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("trapline.settings.sqlite3.sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr("trapline.settings.sqlite3.sqlite_version", "3.34.1")
    with pytest.raises(SettingsError, match=r"SQLite is 3\.34\.1; Trapline needs 3\.35 or newer"):
        load_settings(data_dir=data_dir)

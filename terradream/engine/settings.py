"""Server settings: one pydantic-settings object read from arguments and TERRADREAM_* environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/terradream, else ~/.cache/terradream: the per-user home of the embedded tile cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "terradream"


def parse_worlds(value: Any) -> dict[str, Path]:
    """NAME=IMAGE items (a comma-separated string, a list or a mapping) as {name: image path}."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): Path(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else list(value)
    worlds: dict[str, Path] = {}
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        name, sep, image = item.partition("=")
        if not sep or not name.strip() or not image.strip():
            raise ValueError(f"world must be NAME=IMAGE, got {item!r}")
        worlds[name.strip()] = Path(image.strip()).expanduser()
    return worlds


def parse_csv(value: Any) -> list[str]:
    """A comma-separated string or a list as a list of non-empty stripped strings."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(i).strip() for i in items if str(i).strip()]


def parse_byte_size(text: str) -> int:
    """A byte count from `123`, `500M`, `20G`, `1.5TiB` (K/M/G/T are binary multiples); ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError("a size is a number of bytes, optionally with K, M, G or T (e.g. 500M, 20G)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " KMGT".index(unit.upper() or " "))


class Settings(BaseSettings):
    """Everything the server can be told; built once by the CLI or create_app() and passed down, never global.

    The embedded cache lives under `cache` (default $XDG_CACHE_HOME/terradream or ~/.cache/terradream), one MBTiles
    file per world and model version. With `redis` set, Redis replaces it as the shared back cache.
    """

    # Validation errors never echo input values: they may be secrets (admin token, Redis URL with a password).
    model_config = SettingsConfigDict(env_prefix="TERRADREAM_", extra="ignore", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cache: Path = Field(default_factory=default_cache_dir, description="Directory of the embedded MBTiles cache.")
    redis: str | None = Field(None, repr=False,  # may hold a password: kept out of repr()
                              description="Redis URL (redis:// or rediss://); replaces the embedded cache.")
    scheduler: str | None = Field(
        None, description="Dask scheduler (tcp://HOST:8786) whose `terradream worker`s make cold tiles; needs redis.")
    worlds: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict, description="Extra worlds from images, NAME=IMAGE[,NAME=IMAGE...].")
    allow_arbitrary_worlds: bool = Field(True, description="Serve any well-formed world name (each a new planet).")
    procedural_worlds_max: int = Field(
        8, ge=1, description="Procedural planets kept loaded (about 6 MB each); least recently used ones beyond.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model: Path | None = Field(None, description="Model directory; None uses the shipped default weights.")
    maxzoom: int = Field(22, ge=0, le=30)
    cache_control: str = "public, max-age=86400"
    immutable_when_versioned: bool = Field(
        True, description="Tile URLs whose ?v= equals the model version get a year-long immutable Cache-Control.")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    queue_max: int = Field(1024, ge=1, description="Most tiles waiting for generation; beyond it cold tiles get 503.")
    cold_deadline_s: float = Field(
        30.0, ge=0, description="Longest a client waits for a new tile: one that would not be made in time at the "
                                "measured rate gets 503 with Retry-After at once, one still waiting then gets it "
                                "too (0: no deadline). Cached tiles are never refused.")
    workers: int | None = Field(
        None, ge=1, description="Server processes sharing the cache (`terradream serve`); None: one per core.")
    warm_atlases: bool = Field(
        True, description="Load earth's real water, towns and relief in the background at start (several seconds "
                          "of one core), so the first new tiles do not wait for them.")
    batch_size: int = Field(8, ge=1, description="Most distinct tiles the worker renders in one cascade call.")
    cache_max_bytes: int | None = Field(
        None, ge=0, description="Most bytes the embedded cache may take on disk (suffixes K, M, G, T: binary); least "
                                "recently used tiles are evicted beyond it. Default: half of the free space (plus the "
                                "cache's own size) at start, at least the cache's size; 0: no limit.")
    lru_bytes: int = Field(256 * 2**20, ge=0, description="In-memory LRU of canonical PNG tiles, in bytes.")
    response_lru_bytes: int = Field(64 * 2**20, ge=0, description="In-memory LRU of encoded responses, in bytes.")
    lock_ttl_s: float = Field(
        30.0, gt=0, description="Lifetime of a cross-process (Redis) generation lock; its holder extends it every "
                                "third of it, so after a crash waiters take over within this time.")
    retry_after_s: int = Field(2, ge=1, description="Retry-After sent with 503 answers.")
    client_cold_rate_per_s: float = Field(
        2.0, ge=0, description="New tile generations per second each client address may start (0: no limit); "
                               "beyond its burst a client gets 429 with Retry-After. Cached tiles are not limited.")
    client_cold_burst: int = Field(64, ge=1, description="New tile generations a client may start at once.")
    admin_token: SecretStr | None = Field(
        None, description="Bearer token of the /admin routes (cache purge); without one they do not exist (404).")
    max_url_bytes: int = Field(8192, ge=256, description="Longest request target (path and query); longer: 414.")
    max_header_bytes: int = Field(16384, ge=1024, description="Largest request header block; larger: 431.")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "warning"
    root_path: str = Field(
        "", pattern=r"^(/[^/?#\s]+)*$",
        description="Path prefix a reverse proxy strips before forwarding (e.g. /terradream); URLs handed out keep it.")
    public_url: str | None = Field(
        None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="Base URL clients reach the server at (e.g. https://maps.example.org/terradream); every URL "
                    "handed out starts with it instead of one derived from the request.")

    @field_validator("worlds", mode="before")
    @classmethod
    def _worlds(cls, value: Any) -> dict[str, Path]:
        """Accept NAME=IMAGE items from the CLI and the environment."""
        return parse_worlds(value)

    @field_validator("cache_max_bytes", mode="before")
    @classmethod
    def _byte_size(cls, value: Any) -> Any:
        """Accept 500M, 20G, 1.5T (binary multiples) as well as plain byte counts."""
        return parse_byte_size(value) if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors(cls, value: Any) -> list[str]:
        """Accept a comma-separated list from the environment."""
        return parse_csv(value)

    @field_validator("admin_token", mode="before")
    @classmethod
    def _admin_token(cls, value: Any) -> Any:
        """An empty token means none; a set one must be long enough not to be guessed (16+ characters)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        if len(str(raw)) < 16:
            raise ValueError("admin_token must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _scheduler_needs_redis(self) -> Settings:
        """Workers hand tiles to the API servers through Redis: a scheduler without it cannot work."""
        if self.scheduler and not self.redis:
            raise ValueError("scheduler needs redis: the workers put the tiles there")
        return self

    @field_validator("public_url", mode="after")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        """Without its trailing slash, so paths append to it as to any base."""
        return value.rstrip("/") if value else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        """Log levels are case-insensitive."""
        return value.lower() if isinstance(value, str) else value

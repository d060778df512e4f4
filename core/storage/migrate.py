"""Schema migrations (Alembic), run programmatically so no alembic.ini has to be found."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from pointbridge import migrations
from pointbridge.contract.errors import PointbridgeError

SECRET_KEY = "secret_key"


class SecretKeyRequired(PointbridgeError):
    """A migration must encrypt or decrypt stored values and was given no key."""


def alembic_config(database_url: str, secret_key: bytes | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes[SECRET_KEY] = secret_key
    return config


def upgrade(database_url: str, revision: str = "head", *, secret_key: bytes | None = None) -> None:
    """Migrate to ``revision``. ``secret_key`` is the Fernet key (``core.secrets.load_key``)
    for migrations that encrypt existing rows; a database without such rows needs none."""
    command.upgrade(alembic_config(database_url, secret_key), revision)


def downgrade(database_url: str, revision: str, *, secret_key: bytes | None = None) -> None:
    command.downgrade(alembic_config(database_url, secret_key), revision)


def migration_secret_key(config: Config, needed_for: str) -> bytes:
    """The key the caller passed, for a migration script; one line saying what to do if none."""
    key = config.attributes.get(SECRET_KEY)
    if not key:
        raise SecretKeyRequired(
            f"This migration must {needed_for}, which needs the secret key: run "
            "`pointbridge db upgrade` with the POINTBRIDGE_SECRET_KEY (or instance key file) "
            "the app uses."
        )
    return key

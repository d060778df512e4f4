"""Wiring: everything the web app, the CLI and the worker share, built from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from pointbridge.delivery.outbox import Outbox
from pointbridge.delivery.worker import Worker
from pointbridge.integrations import Integrations
from pointbridge.loyalty.service import Loyalty
from pointbridge.plugins import PluginHost, allowed_plugins_from_env
from pointbridge.settings import Settings
from pointbridge.storage.db import Database
from pointbridge.storage.secrets import SecretBox, load_key
from pointbridge.webhook_targets import WebhookTargets


@dataclass
class Services:
    settings: Settings
    db: Database
    host: PluginHost
    integrations: Integrations
    outbox: Outbox
    loyalty: Loyalty
    webhook_targets: WebhookTargets

    @classmethod
    def build(cls, settings: Settings, host: PluginHost | None = None) -> Services:
        host = host or PluginHost(allowed_plugins_from_env())
        # Building writes nothing: the database file appears on the first write, the key on
        # the first secret encrypted or decrypted, so read-only commands leave no files.
        db = Database(settings.database_url)
        box = SecretBox(lambda: load_key(settings.secret_key, settings.instance_path))
        outbox = Outbox(host)
        outbox.watch(db.sessions)
        integrations = Integrations(host, box, settings)
        return cls(
            settings=settings,
            db=db,
            host=host,
            integrations=integrations,
            outbox=outbox,
            loyalty=Loyalty(settings, outbox),
            webhook_targets=WebhookTargets(integrations),
        )

    def worker(self, **options: object) -> Worker:
        return Worker(
            self.db,
            self.integrations,
            max_attempts=self.settings.max_attempts,
            outbox=self.outbox,
            **options,  # type: ignore[arg-type]
        )

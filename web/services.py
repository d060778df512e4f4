"""Access to the app's shared services from request handlers and commands."""

from __future__ import annotations

from flask import current_app

from pointbridge.services import Services


def services() -> Services:
    return current_app.extensions["pointbridge"]

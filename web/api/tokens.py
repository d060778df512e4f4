"""API tokens over REST: create (the token is in that answer only), list, revoke."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask.views import MethodView
from marshmallow import Schema, fields

from pointbridge.access.tokens import issue_token, list_tokens, revoke_token
from pointbridge.loyalty.schema import text
from pointbridge.storage.models import ApiToken
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.api.admin import management_blueprint
from pointbridge.web.services import services

blp = management_blueprint("tokens", "REST API tokens: stored hashed, shown once.")


class TokenIn(Schema):
    name = text(100, load_default="api", metadata={"description": "What the token is for."})


class TokenOut(Schema):
    id = fields.Integer()
    name = fields.String()
    hint = fields.String(metadata={"description": "Its first characters."})
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "To the minute."})


class TokenCreated(TokenOut):
    token = fields.String(metadata={"description": "Shown this once: store it now."})


def _out(token: ApiToken) -> dict[str, Any]:
    return {column.key: getattr(token, column.key) for column in ApiToken.__table__.columns}


@blp.route("/tokens")
class Tokens(MethodView):
    @blp.response(200, TokenOut(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Every token, never the token itself."""
        with services().db.read() as session:
            return [_out(token) for token in list_tokens(session)]

    @blp.arguments(TokenIn)
    @blp.response(201, TokenCreated)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a token."""
        with services().db.transaction() as session:
            row, token = issue_token(session, body["name"])
            return {**_out(row), "token": token}


@blp.route(f"/tokens/<int(max={MAX_ID}):token_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(404, description="No such token.")
def revoke(token_id: int) -> None:
    """Revoke a token: requests with it are refused (other server processes within 5 s)."""
    with services().db.transaction() as session:
        if revoke_token(session, token_id) is None:
            abort(404, description=f"No API token with id {token_id}.")

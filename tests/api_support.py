"""Calling the JSON API as automation does: a Bearer token, JSON bodies."""

from __future__ import annotations

import json

from django.test import Client

from accounts_app.services import tokens

ALL_SCOPES = ",".join(tokens.SCOPES)


def token_for(user, scopes: str = ALL_SCOPES, *, name: str = "ci", days: int = 30) -> str:
    return tokens.token_create(user=user, name=name, scopes=scopes, expires_in_days=days).secret


class ApiClient:
    def __init__(self, token: str | None, *, language: str = "en", client: Client | None = None):
        self.client = client or Client()
        self.headers = {"Accept-Language": language}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)

    def post(self, path: str, body: dict | None = None, **headers):
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers={**self.headers, **headers},
        )

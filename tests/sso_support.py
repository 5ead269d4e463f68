"""Signing in through the real OpenID provider without a browser: the dashboard through
Django's test client, the provider's own pages over HTTP (requests)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests
from django.test import Client

from tests.fixtures.oidc_provider import CALLBACK_PATH, IDP_PASSWORD, TEST_SERVER


def callback_from_idp(client: Client, username: str, password: str = IDP_PASSWORD) -> str:
    """Start a sign-in, sign in at the IdP; the callback address it sends back (not followed)."""
    start = client.post("/accounts/oidc/idp/login/", {"next": "/"})
    assert start.status_code == 302, start
    idp = requests.Session()
    url = start["Location"]
    for _ in range(12):
        if url.startswith(TEST_SERVER + CALLBACK_PATH):
            return url[len(TEST_SERVER) :]
        response = idp.get(url, allow_redirects=False, timeout=5)
        if response.status_code == 200 and 'name="login"' in response.text:
            action = urljoin(url, _form_action(response.text))
            response = idp.post(
                action, data={"login": username, "password": password}, allow_redirects=False
            )
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        url = urljoin(url, response.headers["Location"])
    raise AssertionError(f"no callback after the IdP's pages: {urlsplit(url).path}")


def _form_action(html: str) -> str:
    start = html.index('action="') + len('action="')
    return html[start : html.index('"', start)]


def idp_sign_in(client: Client, username: str):
    return client.get(callback_from_idp(client, username))

"""ID token verification: signature, issuer, audience, expiry, and the nonce.

Reference: https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import jwt
import requests
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter

# Asymmetric algorithms only: an IdP's public key must never serve as an HMAC secret.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
LEEWAY_SECONDS = 30


class DashboardOIDCAdapter(OpenIDConnectOAuth2Adapter):
    state: dict | None = None

    def complete_login(self, request, app, token, **kwargs):
        id_token = kwargs["response"].get("id_token")
        if not id_token:
            raise OAuth2Error("The IdP sent no ID token")
        data = {"id_token": self._decode_id_token(app, id_token)}
        data["userinfo"] = self._fetch_user_info(token.token)
        # Core 5.3.2: the userinfo response is about the ID token's subject, or ignored.
        if data["userinfo"].get("sub") != data["id_token"]["sub"]:
            raise OAuth2Error("userinfo is about another subject than the ID token")
        return self.get_provider().sociallogin_from_response(request, data)

    def _decode_id_token(self, app, id_token: str) -> dict:
        claims = verify_id_token(
            id_token,
            jwks_uri=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            audience=app.client_id,
        )
        expected = (self.state or {}).get("nonce")
        if not expected or claims.get("nonce") != expected:
            raise OAuth2Error("ID token nonce does not match this sign-in")
        return claims


def verify_id_token(id_token: str, *, jwks_uri: str, issuer: str, audience: str) -> dict:
    """The token's claims if the IdP signed it for us, now; OAuth2Error otherwise."""
    try:
        header = jwt.get_unverified_header(id_token)
        if header.get("alg") not in ALGORITHMS:
            raise OAuth2Error(f"ID token algorithm not accepted: {header.get('alg')!r}")
        key = _public_key(jwks_uri, header.get("kid"), header["alg"])
        return jwt.decode(
            id_token,
            key=key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except (jwt.PyJWTError, requests.RequestException, KeyError, ValueError) as error:
        raise OAuth2Error(f"ID token refused: {type(error).__name__}") from error


def _public_key(jwks_uri: str, kid: str | None, alg: str):
    response = requests.get(jwks_uri, timeout=5)
    response.raise_for_status()
    for jwk in response.json().get("keys", []):
        if jwk.get("kid") == kid and jwk.get("use", "sig") == "sig":
            return jwt.PyJWK.from_json(json.dumps(jwk), algorithm=alg).key
    raise OAuth2Error("ID token signed with a key the IdP does not publish")


class DashboardCallbackView(OAuth2CallbackView):
    def _get_state(self, request, provider):
        # The adapter checks the ID token's nonce against the state of this sign-in.
        state, response = super()._get_state(request, provider)
        self.adapter.state = state
        return state, response


def end_session_url(issuer: str, *, client_id: str, post_logout_redirect_uri: str) -> str:
    """The IdP's RP-initiated logout address, or "" when it offers none.

    Reference: https://openid.net/specs/openid-connect-rpinitiated-1_0.html
    """
    try:
        response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
        endpoint = response.json().get("end_session_endpoint") or ""
    except (requests.RequestException, ValueError):
        return ""
    if not endpoint:
        return ""
    query = urlencode(
        {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

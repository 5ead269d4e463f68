"""Sign-in with the company's OpenID provider, on django-allauth.

allauth brings the OIDC client (discovery, PKCE, state, the SocialAccount of issuer and
subject) and the TOTP/recovery-code authenticators; this package adds what the
dashboard needs on top: the ID token's signature always checked and its nonce bound to
the session (oidc.py), roles from the IdP's groups at every sign-in, no matching by
e-mail (adapters.py), and the page for users whose groups map to no role (middleware.py).
"""

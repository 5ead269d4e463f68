"""The JSON API (/api/v1/): the web pages' services, selectors, policy and rules, over JSON.

Entry points, at the views' layer: each operation asks accounts_app.policy the same
questions the pages ask, and a token's scopes narrow what its user may do, never widen it.
"""

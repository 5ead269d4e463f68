"""Alibaba Cloud R-KVStore API: the operations, their transport and retry policy, request
signing and typed errors. Imports nothing of the rest of the app.

``client.KVStoreClient`` / ``client.get_client()`` is what the services call (behind the
circuit breaker of ``accounts_app.services.breaker``); ``transport`` signs and sends one
attempt and reads its envelope; ``retry`` decides whether another attempt follows;
``errors`` holds the exceptions and their human messages; ``signing`` the V3 and V2
signature methods. What VpcAuthMode means is the app's: ``accounts_app.vpc_auth``.
Facts: docs/alibaba-api.md.
"""

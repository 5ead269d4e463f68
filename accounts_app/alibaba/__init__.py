"""Alibaba Cloud R-KVStore API: request signing, the HTTP client and its typed errors.

``client.KVStoreClient`` / ``client.get_client()`` is what the services call;
``errors`` holds the exceptions and their human messages; ``signing`` the V3 and V2
signature methods; ``vpc_auth`` what VpcAuthMode means. Facts: docs/alibaba-api.md.
"""

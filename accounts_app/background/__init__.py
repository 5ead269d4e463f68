"""Background work on Django's task framework (django.tasks) and django-tasks-db.

- tasks.py: every task (mail, per-region sync, expiry, reconciliation).
- sync.py: a sync fanned out per region, with its progress.
- delivery.py: notifications recorded per (event, recipient), sent once.
- retry.py: retries with backoff, and the dead letter after the last try.
- workers.py: heartbeats, the queue's health, and handing a dead worker's task on.
- scheduler.py: periodic jobs, one enqueue per period whatever the number of schedulers.

No task's arguments, result or error ever hold a password: the execute step (the only
code that sees one) stays in the web request.
"""

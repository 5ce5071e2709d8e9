"""Domain events: a transactional outbox and the consumers that react to it.

A service records an event in the transaction of its change (``event_record``), so the event
exists exactly when the change committed. After commit one task per transaction dispatches
the new events: it writes one ``EventHandling`` row per registered consumer and runs each
consumer in a transaction of its own, together with marking its row done. A consumer that
raises leaves its row ``failed`` with the error and a retry time; a sweeper re-runs pending
handlings a lost message left and failed ones whose retry is due. Consumers are idempotent.
"""

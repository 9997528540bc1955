"""How the node runs: the daemon and its services (`daemon.py`), the bus with every topic
(`bus.py`), the shared context, assembly, retention, receiving, the router, job
execution with its two executors (a local pool of processes, or Celery on RabbitMQ
with `nadir worker`), the outbox sender, the one process supervisor, and the priors
a pipeline gets through its interface. `node/` (DICOM network) and `store/`
(persistence) are the edges it drives; `pipelines/` compose the pure core.
"""

"""Background jobs that outlive a request: permutation inference (:mod:`.permute`), its
shared store (:mod:`.store`: a folder or Redis) and its Celery workers (:mod:`.worker`).
The Dash app follows them from background callbacks (``dashboard.app.jobs``); the CLI
runs them in its own process."""

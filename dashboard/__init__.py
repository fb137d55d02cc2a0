"""cue-dashboard: explore an fMRI cue-reactivity study (cocaine vs neutral cues,
placebo vs N-acetylcysteine) in the browser.

The package has a pure core (``results``, ``stats``, ``atlas``, ``sample``) that never
imports Dash, and a Dash front end in ``dashboard.app``.
"""

__version__ = "0.1.0"

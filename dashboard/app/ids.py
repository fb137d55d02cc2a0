"""Component ids, in one place."""

CONTRAST = "contrast-select"
GLASS_BRAIN = "glass-brain"
SYNTHETIC_BANNER = "synthetic-banner"
STUDY_TITLE = "study-title"
STATUS = "status-line"

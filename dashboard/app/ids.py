"""Component ids, in one place."""

# header
SYNTHETIC_BANNER = "synthetic-banner"
STUDY_TITLE = "study-title"
STUDY_SWITCH = "study-switch"  # links to the other studies of `serve DIR1 DIR2 ...`

# the one serialisable view state (see dashboard.app.state) and render bookkeeping
VIEW = "view-state"
RENDERED_MAPS = "rendered-maps"  # what the map figures currently show (for Patch)
RENDERED_TABLE = "rendered-table"  # key of the cluster table on screen
RFT_PENDING = "rft-pending"  # cluster-table key whose RFT p-values are being estimated
RFT_ROWS = "rft-rows"  # {key, rows, note, footer}: a table with RFT p-values, for the table key it answers
RENDERED_REGRESSION = "rendered-regression"
HOVER = "hover-values"  # T under the pointer for the map views (figures.hover_values), read in the browser
COMPARE_VIEW = "compare-view"  # VIEW, passed on in the browser only while the compare tab is shown
GOTO = "goto"  # {"point": [x, y, z], "n": clicks}: a row of another table (claim check, correspondence) asks to go there

# controls
CONTRAST = "contrast-select"
DIRECTION = "direction-select"
USE_T = "threshold-use-t"
P_KIND = "threshold-p-kind"  # p uncorrected or FWE
P_UNC = "threshold-p-unc"
T_VALUE = "threshold-t"
EXTENT = "extent-k"
MODEL = "model-select"
MODEL_WRAPPER = "model-select-wrapper"
MODEL_TOOLTIP = "model-tooltip"
STATUS = "status-line"

# views
TABS = "view-tabs"
TAB_EXPLORE = "tab-explore"
TAB_COMPARE = "tab-compare"
CLAIMS_TAB = "claims-tab"  # the claim-check dbc.Tab (its tab_id, TAB_CLAIMS, is read in the browser)
TAB_CLAIMS = "tab-claims"
CLAIM_TABLE = "claim-table-choice"  # which of the folder's peak tables
CLAIM_VIEW = "claim-view"  # the view state, passed on only while the claim tab is shown
CLAIM_SUMMARY = "claim-summary"
CLAIM_GRID = "claim-grid"
CLAIM_GOTO_NOTE = "claim-goto-note"  # where a click on a claim row moved the views
CLAIM_UPLOAD = "claim-upload"  # dcc.Upload of a peak table (TSV/CSV)
CLAIM_UPLOAD_NOTE = "claim-upload-note"
CLAIM_MAPPING = "claim-mapping"  # the column-mapping dropdowns of an uploaded table
CLAIM_MAPPING_FIELD = "claim-mapping-field"  # pattern-matching ids {"type": CLAIM_MAPPING_FIELD, "field": <x, y, z, t, ...>}
UPLOAD = "uploaded-table"  # the uploaded table, kept by the page: {name, columns, rows}

# peak layers (markers of peak tables on the maps)
PEAK_LAYERS = "peak-layers"  # which tables are marked
PEAK_VIEW = "peak-view"  # {layers, state, rendered}: set in the browser only while layers are on (or just turned off)
RENDERED_PEAKS = "rendered-peaks"  # key of the distance table shown
PEAK_GRID = "peak-grid"  # each marked peak's distance to the view's clusters
PEAK_SUMMARY = "peak-summary"
PEAK_DETAILS = "peak-details"


def claim_mapping(field: str) -> dict[str, str]:
    """The id of the mapping dropdown of one field of an uploaded peak table."""
    return {"type": CLAIM_MAPPING_FIELD, "field": field}
COMPARE_TAB = "compare-tab"  # the compare dbc.Tab itself (its tab_id, TAB_COMPARE, is read in the browser)
GLASS_BRAIN = "glass-brain"
SLICE_SAGITTAL = "slice-sagittal"
SLICE_CORONAL = "slice-coronal"
SLICE_AXIAL = "slice-axial"
SLICES = (SLICE_SAGITTAL, SLICE_CORONAL, SLICE_AXIAL)
MAP_VIEWS = (GLASS_BRAIN, *SLICES)


def tooltip(graph_id: str) -> str:
    """The dcc.Tooltip that shows T under the pointer over a map view."""
    return f"{graph_id}-tooltip"


POINT_X = "point-x"
POINT_Y = "point-y"
POINT_Z = "point-z"
POINT_TEXT = "point-text"
COMPARE = "compare-glass-brains"
COMPARE_STATUS = "compare-status"
CORR_GRID = "correspondence-grid"  # clusters of the current contrast overlapping those of the others
CORR_SUMMARY = "correspondence-summary"

# cluster table
CLUSTER_TABLE = "cluster-table"
CLUSTER_NOTE = "cluster-note"
SVC_REGIONS = "svc-regions"  # small-volume correction: AAL regions
CLUSTER_FOOTER = "cluster-footer"
DIRECTION_OPTIONS = "direction-options"  # contrast id -> direction radio options
PARTICIPANT_INFO = "participant-info"  # {"ids": [...], "minimum": n, "images": bool} for the browser  # SPM's footer under the table (text)

# regression
COVARIATE = "covariate-select"
VALUE_TYPE = "value-select"
CONDITION = "condition-select"
SCATTER = "regression-scatter"
REG_STATS = "regression-stats"
REG_NOTE = "regression-note"
EXCLUDE_BUTTON = "exclude-participant"
INFLUENCE = "influence-bars"  # each participant's influence on the selected cluster's regression
INFLUENCE_NOTE = "influence-note"
INFLUENCE_REQUEST = "influence-request"  # RENDERED_REGRESSION, passed on once the page has painted the action's views

# leave-one-out survival of the selected cluster (a background job)
SURVIVAL_REQUEST = "survival-request"  # what a run would answer (from VIEW, in the browser): contrast, cluster, threshold, subset...
SURVIVAL_SHOWN = "survival-shown"  # the request the result on screen answers
SURVIVAL_RUN = "survival-run"
SURVIVAL_CANCEL = "survival-cancel"
SURVIVAL_PROGRESS = "survival-progress"
SURVIVAL_PROGRESS_WRAP = "survival-progress-wrap"
SURVIVAL_RESULT = "survival-result"  # the result's container (hidden when it answers another request)
SURVIVAL_STALE = "survival-stale"  # what the panel says when the result is not the selected cluster's
SURVIVAL_SUMMARY = "survival-summary"
SURVIVAL_FIGURE = "survival-strip"
SURVIVAL_GRID = "survival-grid"

# participants
PARTICIPANT_GRID = "participant-grid"
INCLUDED_COUNT = "included-count"
QUICK_FILTER = "quick-filter"  # pattern-matching ids {"type": QUICK_FILTER, "column": <participants.tsv column>}


def quick_filter(column: str) -> dict[str, str]:
    """The id of the quick filter of a participants.tsv column."""
    return {"type": QUICK_FILTER, "column": column}
RESET_PARTICIPANTS = "reset-participants"


def feedback(input_id: str) -> str:
    """Id of the line under a typed input that says why an entry is invalid."""
    return f"{input_id}-feedback"

# permutation inference (dashboard.app.permute)
PERM_N = "perm-n"
PERM_SEED = "perm-seed"
PERM_TFCE = "perm-tfce"
PERM_ALPHA = "perm-tfce-alpha"
PERM_RUN = "perm-run"
PERM_CANCEL = "perm-cancel"
PERM_PROGRESS = "perm-progress"
PERM_PROGRESS_WRAP = "perm-progress-wrap"
PERM_STATUS = "perm-status"
PERM_GRID = "perm-grid"
PERM_FIGURE = "perm-null-figure"
PERM_FIGURE_WRAP = "perm-null-figure-wrap"  # shown only with a result (a hidden figure is never redrawn)
PERM_MAP = "perm-tfce-map"
PERM_MAP_WRAP = "perm-tfce-map-wrap"
PERM_REQUEST = "perm-request"  # {request, token, state, alpha, running}: the panel's question (or None)
PERM_START = "perm-start"  # {clicks, t, r}: a Run click (assets/clientside.js permStart)
PERM_FOLLOW = "perm-follow"  # PERM_REQUEST, set only while its job is running (assets/clientside.js permFollow)
PERM_DONE = "perm-done"  # {token, outputs}: a job ended; its drawing, for the question (token) it answers
PERM_USE_PAIRED = "perm-use-paired"

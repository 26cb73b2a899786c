"""nbgrader configuration for "Convolutional Neural Networks, step by step".

Grading is hardened here, so the stock commands (``nbgrader autograde``,
``generate_feedback``, ``export``, formgrader) all use it:

* submissions are staged within caps, and a missing or malformed notebook
  is graded as blank with a recorded reason (``cnngrader.glue.pipeline``);
* the notebook kernel runs inside bubblewrap, in the submission's cgroup
  (``cnngrader.glue.preprocessors.SandboxedExecute``);
* every graded test cell's score is replaced by a trusted verdict computed
  in per-function sandboxes and judged outside them
  (``cnngrader.glue.preprocessors.TrustedVerdicts``);
* outputs are capped and sanitized before anything renders them
  (``cnngrader.glue.preprocessors.SanitizeOutputs``, ``HTMLExporter.sanitize_html``);
* deleted test cells are restored from the source (``add_missing_cells``);
* feedback never shows hidden test source (``ClearHiddenTests``).

Set ``CNN_STOCK_NBGRADER=1`` to get nbgrader's plain behaviour (used by the
benchmark as the baseline).
"""

import os
from pathlib import Path

from cnngrader.core.paths import course_id, default_db_url

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

HERE = Path(__file__).resolve().parent

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.course_id = course_id(HERE)
# SQLite by default; set CNN_DB_URL for PostgreSQL.
c.CourseDirectory.db_url = default_db_url(HERE)
# grading/ beside each source notebook is the assignment's grading spec and course tools:
# instructor-only, never copied into a release or an autograded folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "grading"]

# The exchange, where release_assignment, submit, collect and release_feedback meet. Any
# user may create the default (a folder of the course, git-ignored; `make exchange` makes it
# shared on one machine). On a shared server, point every instructor and student at one
# world-writable folder, for example CNN_EXCHANGE=/srv/nbgrader/exchange (see README).
c.Exchange.root = os.environ.get("CNN_EXCHANGE") or str(HERE / "exchange")

# Due dates and the late policy (cnngrader/glue/term.py): 10% of the earned score per started day
# late after 15 minutes of grace, at most 50%.
c.CnnTerm.due_dates = {"conv_step_by_step": "2027-01-29 23:59:00 UTC", "train_cnn": "2027-02-19 23:59:00 UTC"}

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Per-cell limit for the notebook kernel: ten times what the naive loop
# reference needs for all of a function's hidden cases (measured by make accuracy).
c.Execute.timeout = 20
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40

if not os.environ.get("CNN_STOCK_NBGRADER"):
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        ClearHiddenTests,
        ClearOutput,
        DeduplicateIds,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        OverwriteCells,
        OverwriteKernelspec,
    )

    from cnngrader.glue.feedback import FeedbackSummary, OfflineFeedbackExporter
    from cnngrader.glue.pipeline import install
    from cnngrader.glue.preprocessors import (
        RestoreCells,
        SandboxedExecute,
        SanitizeOutputs,
        SaveAutoGradesOnce,
        TrustedVerdicts,
    )

    # `nbgrader autograde`, its API and formgrader build the hardened converter.
    install()

    # Deleted read-only and test cells come back (RestoreCells fixes the order
    # nbgrader's own add_missing_cells gets wrong; OverwriteCells then restores
    # their source, hidden tests included, from the gradebook).
    c.OverwriteCells.add_missing_cells = True
    c.Autograde.sanitize_preprocessors = [
        ClearOutput,
        DeduplicateIds,
        RestoreCells,
        OverwriteKernelspec,
        OverwriteCells,
        CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        SandboxedExecute,
        TrustedVerdicts,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SanitizeOutputs,
        SaveAutoGradesOnce,
        AssignLatePenalties,
        # CheckCellMetadata already ran while sanitizing; nothing after it changes metadata.
    ]
    c.AssignLatePenalties.plugin_class = "cnngrader.glue.term.LatePenalty"
    # Feedback never shows hidden test source, no student HTML runs in a browser, and the
    # page works offline once fetched (figures embedded, math as MathML, nothing remote).
    c.GenerateFeedback.preprocessors = [GetGrades, FeedbackSummary, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.exporter_class = OfflineFeedbackExporter
    c.GenerateFeedback.post_convert_hook = "cnngrader.glue.feedback.complete_feedback_folder"
    c.HTMLExporter.sanitize_html = True
    # `nbgrader export` writes a spreadsheet-safe CSV; make export adds a Canvas gradebook.
    c.ExportApp.plugin_class = "cnngrader.glue.exports.SafeCsvExportPlugin"

# Limits on student code and uploads: the defaults are in cnngrader/sandbox/limits.py
# (`make limits` prints every one in force). Override them here, for example:
#   c.CnnLimits.cpu_seconds = 30          # CPU seconds per graded function
#   c.CnnLimits.memory_bytes = 1 << 30    # memory of the kernel and of each function

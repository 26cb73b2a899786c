"""nbgrader settings for students of "Convolutional Neural Networks, step by step".

Keep this file in the folder you start JupyterLab from (``make lab`` does),
or copy it to ``~/.jupyter/nbgrader_config.py``. It tells nbgrader which
course you are in and where the course's exchange is, so the Assignments
panel (and ``nbgrader fetch_assignment``, ``submit``, ``fetch_feedback``)
find your assignments.

On a shared server your instructor gives you the exchange path; set it with
``export CNN_EXCHANGE=/srv/nbgrader/exchange`` before starting JupyterLab,
or edit the line below.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "cnn_step_by_step"
# Default: the exchange folder of a course checked out next to this folder (one machine).
c.Exchange.root = os.environ.get("CNN_EXCHANGE") or str(Path(__file__).resolve().parents[1] / "exchange")

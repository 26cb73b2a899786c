"""Instructor-side grading for the course "Convolutional Neural Networks, step by step".

Nothing in this package is released to students. It has four parts:

* ``core``: assignment specs, hidden expectations, the judge, the wire codec, the grading record;
* ``sandbox``: limits, bubblewrap, cgroups and the per-function worker that runs student code;
* ``glue``: what nbgrader_config.py installs into nbgrader (preprocessors, feedback, export plugins);
* ``tools``: the ``cnn`` command (batch grading, report, accuracy, bench, demo).

``incell`` is what the source notebooks' hidden test cells import; it stays at the top
so saved notebooks keep working. Course content (each assignment's grading spec,
input makers, mutants and figures) lives beside its notebook in ``source/<id>/grading/``.
"""

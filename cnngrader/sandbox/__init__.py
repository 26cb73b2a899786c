"""Running student code: limits, bubblewrap, cgroups, the per-function worker.

``limits`` holds every cap; ``bwrap`` builds the bubblewrap command lines and
the sandboxed notebook kernel; ``cgroups`` the per-submission groups;
``jail`` what a sandboxed process does to itself before student code runs;
``runner`` the worker that calls one graded function (it runs inside the
sandbox as a plain script, with ``codec`` and ``jail`` beside it);
``verdicts`` starts those workers and hands their results to the judge;
``staging`` copies a submission in within caps.
"""

"""The grading core: what an assignment is and how a result is judged.

``spec`` loads an assignment's grading spec; ``hidden_data`` and ``reference``
turn it and the source notebook's solutions into instructor-only expectations;
``judge`` compares decoded results with them; ``codec`` is the wire format
between the sandbox and the grader; ``record`` is one submission's typed
grading result. Nothing here knows what a convolution is, or runs student code.
"""

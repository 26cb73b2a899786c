"""Instructor tools behind the ``cnn`` command: batch grading, the report, the accuracy and
benchmark harnesses, the demo and its example submissions."""

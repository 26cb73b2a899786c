"""Instructor-side tooling for the course "Convolutional Neural Networks, step by step".

Nothing in this package is released to students: it holds the hidden check
definitions, the trusted verdict machinery, the sandbox and the batch grader.
The reference solutions themselves live only in the source notebook.
"""

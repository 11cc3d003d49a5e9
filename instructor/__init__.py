"""Instructor-only tools: not part of the student edition (``make student`` leaves this
folder out). ``python -m instructor.grading --help`` lists the commands; the guide is
instructor/README.md.

- ``release``        the student edition: solution regions and derivations out
- ``notebook_checks`` run a notebook, score its visible checks (the course's test)
- ``hidden_tests``   instructor-only cases per exercise, expected values from torch
- ``sandbox``        run untrusted code in a subprocess (bwrap, limits, no survivors)
- ``static_check``   flags gradient exercises solved with torch/autograd
- ``submission``     grade one student's folder (package and notebook exercises)
- ``gradebook``      grade a class: CSV/JSON gradebook, feedback files, resumable
- ``nbgrader_meta``  nbgrader cell metadata from the course's tags
"""

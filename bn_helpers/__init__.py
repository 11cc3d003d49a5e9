"""bn_helpers: the code behind *BatchNorm from First Principles*.

One module per idea; import the one you need:
``from bn_helpers import batchnorm as bn``.

- ``batchnorm``  the BN math in numpy (forward, backward, inference, conv, layers)
- ``gradcheck``  relative error and finite-difference gradients
- ``checks``     readable pass/fail reports for the notebook exercises
- ``data``       the MNIST loader (checksum-verified, offline)
- ``models``     the paper's MNIST MLP, with or without BN, built by one function
- ``training``   a seeded training loop that records per-layer activation statistics
- ``plots``      the course figure style and the figures notebooks draw in one call
- ``widgets``    ipywidgets explorers (plain functions, testable without a browser)
- ``compgraph``  the BN computational graph, drawn with matplotlib
- ``timing``     side-by-side timing and allocation counts for the comparisons
"""

__version__ = "0.1.0"

"""bn_helpers: the code behind *BatchNorm from First Principles*.

One module per idea; import the one you need, e.g. ``from bn_helpers import batchnorm as bn``.

- ``batchnorm``  the BN math in numpy (forward, backward, inference, conv, layers)
- ``gradcheck``  relative error and finite-difference gradients
- ``checks``     readable pass/fail reports for the notebook exercises
- ``data``       the MNIST loader (checksum-verified, offline)
"""

__version__ = "0.1.0"

"""bn_helpers: the code behind *BatchNorm from First Principles*.

One module per idea; import the one you need:
``from bn_helpers import batchnorm as bn``.

- ``batchnorm``  the BN math in numpy that you write (forward, backward, inference,
  running statistics, conv, layers), each exercise in a solution region
- ``verify``     the checks of those exercises, against torch and finite differences
- ``torch_bridge`` your numpy BN as a torch layer, so your code trains the networks
- ``gradcheck``  relative error and finite-difference gradients
- ``checks``     readable pass/fail reports for the notebook exercises
- ``data``       the MNIST loader (checksum-verified, offline)
- ``models``     the paper's MNIST MLP, with or without BN, built by one function
- ``training``   a seeded training loop that records per-layer activation statistics
- ``ics_dashboard`` a deep net's forward and gradient side over training (notebook 01)
- ``plots``      the course figure style and the figures notebooks draw in one call
- ``widgets``    ipywidgets explorers (plain functions, testable without a browser)
- ``compgraph``  the BN computational graph, drawn with matplotlib
- ``timing``     side-by-side timing and allocation counts for the comparisons
- ``lr_study``   the learning-rate sweep with and without BN, one run per rate
- ``lab``        many MLPs trained at once; the shipped mechanism ablation (06)
- ``lab_widget`` notebook 06's learning-rate lab and the ablation figure
- ``norms``      LayerNorm and GroupNorm on the learner's BN (notebook 10)
- ``convnet``    the small conv net of notebook 10, seeds stacked, ghost BN
- ``figure1``    the paper's Figure 1: training, checksummed results, plot (notebook 07)
- ``batch_noise`` batch-statistic noise, train/eval-mode accuracy, precise BN (08)
- ``landscape``  noisy BN, the gradient-change ICS measure, landscape probes (09)
"""

__version__ = "0.1.0"

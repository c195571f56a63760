"""Suite-wide settings.

bf16 training on the CPU runs BatchNorm → max-pool → LeakyReLU as kernels that torch.compile
builds (infomax/speedups/bn_pool_act.py, applied by the training loop unless INFOMAX_COMPILE=0),
one build per map shape, a few seconds each. The suite trains many small models of different
shapes, so it leaves those kernels out unless INFOMAX_COMPILE is set; tests/speedups/ checks the
compiled kernels against float64 formulas and the eager ops.
"""

import os

os.environ.setdefault("INFOMAX_COMPILE", "0")

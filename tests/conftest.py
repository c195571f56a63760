"""Suite-wide settings.

bf16 training steps on the CPU run BatchNorm → max-pool → LeakyReLU as kernels that torch.compile
builds (infomax/model/bn_pool_act.py), one build per map shape, a few seconds each. The suite
trains many small models of different shapes, so it runs those ops eagerly unless
INFOMAX_COMPILE is set; tests/model/test_bn_pool_act.py checks the compiled kernels against
float64 formulas and the eager ops.
"""

import os

os.environ.setdefault("INFOMAX_COMPILE", "0")

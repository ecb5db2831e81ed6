"""The machinable component of method `rbd`: random bases descent (seedbench/methods/random_bases.py); `~hadamard` is RBD with Hadamard bases.

Versions are the method's presets and machinable.yaml's (seedbench/sweep/component.py).
"""

from seedbench.methods.random_bases import RBDConfig
from seedbench.sweep.component import MethodComponent


class Rbd(MethodComponent):
    method_name = "rbd"
    Config = RBDConfig

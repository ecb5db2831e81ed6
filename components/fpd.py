"""The machinable component of method `fpd`: fixed projection descent (seedbench/methods/random_bases.py).

Versions are the method's presets and machinable.yaml's (seedbench/sweep/component.py).
"""

from seedbench.methods.random_bases import FPDConfig
from seedbench.sweep.component import MethodComponent


class Fpd(MethodComponent):
    method_name = "fpd"
    Config = FPDConfig

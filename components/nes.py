"""The machinable component of method `nes`: natural evolution strategies (seedbench/methods/random_bases.py).

Versions are the method's presets and machinable.yaml's (seedbench/sweep/component.py).
"""

from seedbench.methods.random_bases import NESConfig
from seedbench.sweep.component import MethodComponent


class Nes(MethodComponent):
    method_name = "nes"
    Config = NESConfig

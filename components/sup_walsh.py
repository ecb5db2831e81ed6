"""The machinable component of method `sup_walsh`: Walsh-code pretraining, then SGD (seedbench/methods/sup_walsh.py).

Versions are the method's presets and machinable.yaml's (seedbench/sweep/component.py).
"""

from seedbench.methods.sup_walsh import SupWalshConfig
from seedbench.sweep.component import MethodComponent


class SupWalsh(MethodComponent):
    method_name = "sup_walsh"
    Config = SupWalshConfig

"""The machinable component of method `sgd`: plain minibatch SGD, the baseline (seedbench/methods/sgd.py). PA rewiring and stabilized
strength are SGD with an initializer pipeline: their cells are sgd cells (init, rewire, stabilize in the config).

Versions are the method's presets and machinable.yaml's (seedbench/sweep/component.py).
"""

from seedbench.methods.sgd import SGDConfig
from seedbench.sweep.component import MethodComponent


class SGD(MethodComponent):
    method_name = "sgd"
    Config = SGDConfig

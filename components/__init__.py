"""One machinable component per method: `components.<method>` (see seedbench/sweep/component.py).

A registered method without a file here (a plugin's) is imported as a component built from it.
"""

from seedbench.sweep.component import install_finder

install_finder()

"""The report behind docs/results.md, docs/models.md and docs/results.png, in three steps; the command is
``benchmarks/results.py`` (see its docstring for what a run does).

* :mod:`report.collect`: measure (quality with the ``edgedenoise eval`` protocol, speed with one
  ``edgedenoise bench`` process per artifact and size, the matmul ceiling, the baselines, params and MACs) into
  the results dict that ``benchmarks/results/results.json`` holds, and merge an ``--update`` run into it.
* :mod:`report.targets`: read figures back out of that dict and check the targets (ratios of frames/s, the
  model zoo table's rows, the light-model, frames/s and real-time targets).
* :mod:`report.render`: the markdown pages and the plot.

``benchmarks/`` is a folder of scripts, not a package: import these modules with ``benchmarks/`` on
``sys.path`` (``results.py`` puts it there), as ``report.collect`` and so on.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository

"""seqrl: offline RL with interchangeable sequence backbones.

The repository keeps its folders where the layout asks (``agents/``, ``envs/``,
``datasets/``); the package installs them under this one namespace as
``seqrl.agents``, ``seqrl.envs`` and ``seqrl.datasets``, so that a user's
``import datasets`` still means the Hugging Face package.
"""

__version__ = "0.1.0"

from seqrl.core.command import guard_loading

guard_loading()  # a seqrl command stopped while torch and MuJoCo load ends with one line (seqrl/core/command.py)

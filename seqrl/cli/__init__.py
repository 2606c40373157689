"""The command-line programs, installed as ``seqrl-train``, ``seqrl-evaluate`` and ``seqrl-export``.

The repository's ``train_offline.py``, ``evaluate.py`` and ``export.py`` run the same ``main``
functions, so ``python train_offline.py ...`` in a checkout and ``seqrl-train ...`` after
``pip install .`` are one program.
"""

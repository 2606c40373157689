"""The lowest room: what every other part of seqrl may import and what imports nothing of seqrl but itself.

The error type the commands report without a traceback (``errors``), typed configs from plain mappings
(``typed``), the benchmark's task table (``tasks``), files a crash cannot damage (``files``), the machine and
its devices (``runtime``), and MuJoCo's warnings (``mujoco_warnings``).
"""

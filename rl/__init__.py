"""RL with the VerIF reward: batched reward for verl 0.9 and TRL, data preparation, launch recipes.

Light to import: verl and TRL load only in ``rl.verl_manager`` and ``rl.trl``.
"""

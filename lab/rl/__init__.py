"""Reinforcement-learning playground: small finite MDPs as data and the classic tabular algorithms.

`env` (dynamics as data), `grid` (editable gridworlds, JSON), `presets` (the book's and Gymnasium's worlds),
`dp` (policy evaluation, policy iteration, value iteration), `td` (Monte Carlo, TD(0), Sarsa, Expected Sarsa,
Q-learning), `pg` (REINFORCE, actor-critic), `explain` (Bellman backups with the numbers), `algorithms` (the
catalogue, display frames and multi-seed learning curves), `playback` (a finished run for the UI: frames,
the inspector, frame pacing), `render` (SVG and plotly drawings). Sutton & Barto,
Reinforcement Learning: An Introduction (2nd ed.) is the reference throughout.
"""

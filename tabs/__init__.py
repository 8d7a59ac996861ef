"""The app's tabs, in display order. Each module has one `build(ctx)` that lays out and wires its components.

Only tabs that work are listed here.
"""

from tabs import chat, evaluate, rl, train

TABS: list = [("Chat", chat), ("Evaluate", evaluate), ("Train", train), ("RL", rl)]

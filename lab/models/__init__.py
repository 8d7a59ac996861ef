"""Model layer: which models and adapters the lab knows (registry), the embedded default, and loading them."""

"""The chat arena's core: conversation helpers, the preference store, its exports to trl formats, and vote statistics."""

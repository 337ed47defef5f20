"""Built-in implementations (pure functions run in worker processes, and the memory run on the loop)."""

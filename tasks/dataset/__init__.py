"""The dataset's bookkeeping: staging, the shard cache, commits, recovery, accounting and run records."""

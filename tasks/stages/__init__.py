"""The analysis: one module or package per pipeline stage, each holding only its computation."""

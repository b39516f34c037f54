"""Training the project's heads (newsflow train): never run by a pipeline stage."""

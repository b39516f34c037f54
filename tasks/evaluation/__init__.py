"""Quality measurement: classification metrics and summary ROUGE, shared by `newsflow evaluate` and training."""

"""The model after training: the versioned store, hot-swap in running workers, periodic retraining."""

"""Storage at a URL: the click archive and the model store, on any fsspec filesystem."""

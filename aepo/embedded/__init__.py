"""The embedded PyTorch backend: any Hugging Face causal LM on CPU or one GPU."""

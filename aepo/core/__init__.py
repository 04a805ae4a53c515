"""Backend-agnostic AEPO math: pure tensor functions plus the entropy controller.

Shared by the embedded trainer and the verl plugin. Vocabulary for shapes:
B sequences (rows), T response tokens, V vocabulary, G group size, P prompts.
"""

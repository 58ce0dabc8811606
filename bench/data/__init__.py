"""Data sets as uint8 tensors, episode sampling and fixed test-episode sets."""

"""Encoders: turn segments into L2-normalised float32 vectors in named spaces. No Qt."""

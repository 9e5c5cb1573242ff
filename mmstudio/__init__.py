"""mmstudio: explore multimodal collections (images, text, audio, video)."""

__version__ = "0.1.0"

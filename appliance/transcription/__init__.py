"""Offline transcription with Vosk: the models (models.py); the workers come next."""

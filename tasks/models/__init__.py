"""Model backends: the sentence encoder and the small heads that read its features."""

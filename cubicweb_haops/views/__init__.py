"""Views of the haops cube."""

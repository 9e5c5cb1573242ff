"""The embedding map: 2-D layouts of a space's item vectors, their colours, and the geometry
to draw and pick them."""

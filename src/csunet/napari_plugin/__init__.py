"""The napari plugin (``pip install "csunet[napari]"``): segment, correct, fine-tune and measure in the viewer.

Labels layers hold ``class index + 1``: napari's label 0 is its eraser and means "unlabelled" here
(:mod:`csunet.napari_plugin.labels`). Only ``widgets`` imports Qt; the rest works without it.
"""

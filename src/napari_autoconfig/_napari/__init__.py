"""The napari side of the plugin: widget panels, layers drawn on the viewer, plots."""

"""The napari side of napari-autoconfig: the only part of the package that imports napari or Qt.

=====================  =================================================================
module                 holds
=====================  =================================================================
``widget.py``          the dock widget: assembles the panels, feeds the state and tells the
                       panels of its changes, owns the boxes and the opened image, wires the
                       worker and the viewer
``state.py``           the planning state without Qt (fingerprints, folders, limits, planner,
                       plan, snippet): an evented model, testable without a viewer
``panel.py``           ``Panel``: what every part of the dock is, and the hooks it gets
``folders_panel.py``   folders, limits, Fingerprint / Cancel, progress, status (on top)
``results_panel.py``   tab "Plan": summary and plan tables (biom3d | nnU-Net), the reasons
``images_panel.py``    tab "Images": the per-image table, Only flagged, Open, CSV
``intensity_tab.py``   tab "Intensities": the histogram and the normalisation preview
``objects_tab.py``     tab "Objects": the objects panel fed the fingerprint, plan and image
``export_panel.py``    tab "Config": the snippet, Copy, Save as…, Update config…
``tables.py``          small read-only tables that sort by value
``boxes.py``           the patch, augmentation-patch and nnU-Net-patch boxes drawn on an image
``box_keeper.py``      where the boxes go as the plan, the selection and the layers change
``opener.py``          opening a table row: image and mask prepared in a worker
``lazy.py``            a file as a dask array read plane by plane through the core's readers
``run.py``             the fingerprinting worker's body (never raises), nnU-Net's pass too
``guard.py``           the decorator that keeps exceptions out of Qt slots
``warmup.py``          what napari's first layers and workers need, built once by their first worker
``histogram.py``       the foreground intensity histogram (matplotlib), clip bounds, mean ± std
``preview.py``         the normalisation preview: a lazy ``normalized`` layer over the image
``objects_panel.py``   the masks' objects against the patch, the largest one outlined; the
                       per-label table (a row outlines its label); Save datastats…
``reader.py``          the npe2 reader (NIfTI, MetaImage, NRRD at their spacing)
``sample_data.py``     the npe2 sample (one volume of the bundled dataset and its mask); the
                       dock takes its folders
``settings.py``        the folders and limits remembered between launches
=====================  =================================================================

Adding a panel (a histogram, a memory estimate...): write one file with a subclass of
:class:`~.panel.Panel` (a ``title`` makes it a tab; its children get names, reachable from the dock
as ``widget["name"]``), override the hooks it needs (``show_result``, ``show_plan``,
``show_boxes``, ``show_selection``, ``set_running``, ``closed``) and read the state from
``self.host`` (``host.result``, ``host.plan``, ``host.viewer``); then add its class to ``PANELS``
in ``widget.py``.
"""

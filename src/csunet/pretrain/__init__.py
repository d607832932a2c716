"""Microscopy pretraining of the Swin encoder (the paper's MicroLite pipeline): prepare a collection (clean, tile,
augment, cluster), then train Swin-T as an image classifier and export its encoder for CS-UNet.

``csunet.pretrain.clean.clean_folder``, ``.tiles.tile_folder`` / ``augment_folder``, ``.cluster.cluster_folder``
and ``.train.pretrain`` are what the ``csunet prep ...`` and ``csunet pretrain`` verbs call.
"""

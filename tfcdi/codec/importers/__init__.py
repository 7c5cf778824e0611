"""Importers: codecs trained by other libraries, turned into ordinary tfcdi bundles.

  torch_checkpoint.py  reads a torch.save'd state dict into NumPy arrays, without torch
  compressai.py        CompressAI's bmshj2018-hyperprior, bmshj2018-factorized and mbt2018-mean
                       -> bundles of the hyperprior, factorized and meanscale families
                       (`import_checkpoint`; the binary experiments/import_codec.py)
  synthetic.py         reproducible pseudo-random state dicts (pure NumPy), shared by the parity
                       tests and the tool that makes their fixtures with CompressAI itself
                       (tools/compressai_fixtures.py)

Nothing here imports torch or compressai, and nothing downloads: a user brings the checkpoint.
"""

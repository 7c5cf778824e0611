"""Learned image codecs behind one interface, and the .tfci files they write.

The interface (interface.py) is what the rest of tfcdi calls: a codec has a name and a
fingerprint, a downsampling factor, `compress(image) -> bytes`, `decompress(bytes) -> image`,
`read_latents(bytes) -> {name: array}` (what compressed-domain nets read: "z_hat" for the
autoencoder; "y_hat" and "sigma_hat" for the hyperprior), `latents(images)`, and its integer
tables; its Reader (`codec.tables()`) does the reading without the neural network. The registry
(registry.py) finds a family by the .tfci header's family byte or by name, and loads bundles
(`registry.load(path)`; `pretrained.load_codec` goes through it). Nothing outside this package
asks which family a codec is.

Layers (each imports only those before it; tests/test_imports.py fails on a cycle):
  bitstream -> interface -> bundles -> the family modules -> registry (BUILT_IN: the built-in
  families) -> pretrained (the loading entry point) -> coding -> evaluation.
A family module imports neither the registry nor pretrained: a Reader finds its own family as
the FAMILY of its module (interface.Reader.family_info).

Families, one module each:
  autoencoder.py      byte 0, Torfason et al.'s autoencoder (model.py, quantizer.py; widen.py
                      widens a trained one to more filters, same function)
  hyperprior_codec.py byte 1, Balle et al. 2018's scale hyperprior (hyperprior.py, gdn.py)
  factorized_codec.py byte 2, Balle et al. 2018's factorized prior, imported (its layout:
                      factorized_bitstream.py)
  meanscale_codec.py  byte 3, Minnen et al. 2018's mean-scale hyperprior, imported
Shared: bitstream.py (the container and the built-in families' layouts; pure NumPy and the
entropy coder), bundles.py (the .npz bundle file: atomic write, checked read, frequency tables),
weight_bundles.py (the imported families' bundles),
pretrained.py (load_codec: a shipped codec or a bundle of any family; the family modules' save
and load functions under their old names), coding.py (compress / decompress / find the codec a
file names), evaluation.py (rate-distortion from real files).

How to add a family (e.g. one imported from another library's checkpoint):
  1. Write its module, tfcdi/codec/<family>.py, defining
     - a Reader subclass (identity + integer tables): read_symbols(bytes) -> (header, {symbol
       name: int32 [h, w, C]}), latents_from_symbols (TF ops), check_shapes, latent_shapes,
       information_bits, integer_tables, to_json (with "family": its name), and save_beside if
       its tables are too large for JSON;
     - a Codec subclass (the Reader plus its model): tables(), batch_compressor, reconstruct,
       latents, result_identity, label (compress / decompress come with the base class);
     - its bundle's save and load functions, over bundles.write / bundles.read;
     - FAMILY, an interface.Family: its name, an unused family byte, downsampling,
       latent_names, symbol_names, selector (what picks a shipped codec, e.g. "quality"), and
       load / read_tables / tables_from_json; parse_header for a header layout of its own
       (the built-in layouts parse with bitstream.parse_header; give the new layout a section
       in bitstream.py's docstring).
  2. Add one line to registry.BUILT_IN (its module's FAMILY) and import the module there.
Stores, exports, evaluation and the binaries then take it as they are; a net's inputs are named
by the family's latent_names. tests/test_codec_registry.py registers a toy family this way (with
registry.register, at run time) and takes it through compress, decompress, read_latents and a
latent store.
"""

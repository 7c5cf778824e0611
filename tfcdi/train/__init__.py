"""The training loops, one module per stage, sharing one workdir module.

  codec.py       the autoencoder at one operating point (Eq. 1), its recipes and bundles
  hyperprior.py  the scale hyperprior at one quality (shares codec.py's step loop)
  classifier.py  the classifiers of Table 2 on original / decoded / latent inputs
  segmenter.py   the DeepLab-style segmenters on the same three inputs
  joint.py       Eq. 2 fine-tuning of codec and cResNet, and its control arms
  workdir.py     what they share: checkpoints (one tf.train.Checkpoint of the loop's objects and
                 counters under WORKDIR/checkpoints, the two latest kept), resume, results.json
                 written atomically, a finished run read back and its model restored
  precision.py   float32 / mixed bfloat16

Each loop is resumable: killed and started again with the same arguments, it restores its latest
checkpoint and goes on. The checkpoint entries' names are those runs on disk already hold
(tests/test_workdir.py pins them).
"""

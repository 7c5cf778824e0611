"""The reporting layer: results JSON and the published numbers in, tables, figures and verdicts out.

  results        reading, indexing and collecting results files; table formatting
  published      shared/reference/paper_numbers.json and the views the tables take of it
  seeds          an arm's seeds as mean, range and count; the spread rule of the verdicts
  classification Table 2's classification columns and the latent stores' sizes
  segmentation   Table 2's mIoU column, the latent-vs-decoded gaps, Fig. 5's runs
  joint          Section 6: baseline, compression ft. and joint ft. (Figs. 7 and 11)
  hyperprior     the bmshj2018-hyperprior follow-up's table
  storage        the storage claim measured on full-size photos and on the latent store
  claims         the paper's claims checked on the report's data
  paper_figures  Figs. 3, 4, 6 and 12;  figures: Fig. 5's mask grids, Figs. 7 and 11
  report         report.md / report.json of a tfcdi-reproduce workdir

Nothing here trains, builds a model or imports TensorFlow (tests/test_imports.py holds it to
that), and nothing here imports the pipeline: tfcdi/reproduce.py and tools/ call in, never the
other way round. Figures import matplotlib inside the functions that draw.
"""

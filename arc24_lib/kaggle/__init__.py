"""The competition path (K1-K3): `datasets` builds and pushes the Kaggle datasets and kernel (the CLI,
`python -m arc24_lib.kaggle`), `metadata` checks their metadata, `wheelhouse` resolves the offline wheels,
`install` sets up a kernel offline (standard library only: it runs before the library's dependencies are
installed, so this file imports nothing), `run` is the competition run with its `workers`, and
`rehearsal` plays that run here from the datasets as pushed."""

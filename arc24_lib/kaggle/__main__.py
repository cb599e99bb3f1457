"""`python -m arc24_lib.kaggle`: build, check and push the Kaggle datasets and kernel (see `datasets`)."""

from arc24_lib.kaggle.datasets import main

main()

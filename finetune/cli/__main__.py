"""``python -m finetune.cli``: the same as the ``causalmixft`` console script."""

import sys

from finetune.cli import main

sys.exit(main())

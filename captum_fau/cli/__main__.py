"""``python -m captum_fau.cli``: the ``captum-fau`` command (also under ``torchrun -m``)."""

import sys

from captum_fau.cli import main

sys.exit(main())

"""``python -m trainlab …`` (what ``torchrun … -m trainlab train RECIPE`` runs on every rank)."""

import sys

from trainlab.cli.main import main

sys.exit(main())

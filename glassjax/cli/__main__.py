"""``python -m glassjax.cli ...`` is the ``glassjax`` command."""
import sys

from glassjax.cli import main

sys.exit(main())

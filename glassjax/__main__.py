import sys

from glassjax.cli import main

sys.exit(main())

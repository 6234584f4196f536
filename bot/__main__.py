"""`python -m bot` is `slo-bot`."""

import sys

from bot.cli import main

sys.exit(main())

import sys

from timeline_bridge_tools.cli import main

sys.exit(main())

import sys

from timeline_bridge.cli import main

sys.exit(main())

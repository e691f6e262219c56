"""``python -m batscope.app`` = ``batscope serve``."""

from .cli import main

raise SystemExit(main())

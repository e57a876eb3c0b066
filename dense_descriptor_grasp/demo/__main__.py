"""``python -m dense_descriptor_grasp.demo`` (``make demo``)."""
import sys

from .cli import main


sys.exit(main())

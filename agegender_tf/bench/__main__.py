"""``python -m agegender_tf.bench VERB``."""

import sys

from agegender_tf.bench.cli import main

sys.exit(main())

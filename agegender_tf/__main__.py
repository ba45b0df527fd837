import sys

from agegender_tf.cli import main

sys.exit(main())

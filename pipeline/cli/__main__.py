import sys

from seqrec.pipeline.cli import main

sys.exit(main())

"""``python -m vclip.synthetic --out DIR``: see :mod:`vclip.synthetic.generate`."""

import sys

from vclip.synthetic.generate import main

if __name__ == "__main__":
    sys.exit(main())

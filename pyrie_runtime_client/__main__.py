"""``python -m pyrie_runtime_client module.function``: run the handler against ``AWS_LAMBDA_RUNTIME_API``."""

import sys

from pyrie_runtime_client.bootstrap import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

"""S3PRL's ``run_downstream.py`` with effspeech adapters: the same flags, plus ``--adapter`` and ``--data-root``.

python run_downstream.py -m train -u hubert_adapter -k hubert.pt -d ks -n my_exp --adapter houlsby
python run_downstream.py -m evaluate -e result/downstream/my_exp/dev-best.ckpt

Installed from the wheel it also runs as ``python -m run_downstream`` from any directory.
"""

import sys

from effspeech.superb.trainer.main import main

if __name__ == "__main__":
    sys.exit(main())

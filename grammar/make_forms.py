"""Write grammar/forms.ru.json: every Russian form of the lexicon's lemmas and of the examples' aliases.

    .venv/bin/python grammar/make_forms.py

Run it after editing `lemmas` or `numbers` in grammar/lexicon.json or an alias in examples/;
tests/commands/test_forms.py fails while the shipped table differs from what this makes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neira.commands.forms import main  # noqa: E402

if __name__ == "__main__":
    main()

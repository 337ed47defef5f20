"""The Command Cell: Russian and English commands → Command → spec → policy → dry-run plan → apply.

One way through: text → normalise (normalize.py, tokens.py) → parse (grammar/command.lark, parse.py,
transform.py) → Command (model.py) → resolve against the catalog (known.py, resolve.py, specs.py).
"""

from neira.commands.known import Known
from neira.commands.lexicon import Lexicon
from neira.commands.model import Command, ParseFailure
from neira.commands.parse import parse
from neira.commands.resolve import Resolution, resolve

__all__ = ["Command", "Known", "Lexicon", "ParseFailure", "Resolution", "parse", "resolve"]

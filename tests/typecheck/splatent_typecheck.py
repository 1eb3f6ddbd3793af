"""The run-time type checker of the test suite: pyproject.toml's ``--jaxtyping-packages`` names it as
``splatent_typecheck.typechecker`` (this folder is on pytest's ``pythonpath``).

It is beartype with one setting, ``is_pep484_tower``: an ``int`` passes where a ``float`` is annotated, as PEP 484
and pyright have it (nerfstudio's typeguard does the same). Named by path because jaxtyping's option parser (0.3.11)
breaks on a typechecker written with arguments after a list of packages.
"""

import beartype

typechecker = beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))

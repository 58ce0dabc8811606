"""Query attacks through torchattacks on the adapted `TaskModel` (one registered threat each):
the contract in `query`, the signed-gradient family in `gradient`, the search attacks in `search`."""

from bench.threats.attacks.gradient import FGSM, MIFGSM, PGD, PGDL2, FGSMConfig, MIFGSMConfig, PGDConfig, PGDL2Config
from bench.threats.attacks.query import InputOnly, Norm, QueryAttack, modes_kept, training_attack
from bench.threats.attacks.search import (
                                          APGDCE,
                                          APGDDLR,
                                          CW,
                                          APGDConfig,
                                          AutoAttack,
                                          AutoAttackConfig,
                                          CWConfig,
                                          Square,
                                          SquareConfig,
)

__all__ = ["APGDCE", "APGDDLR", "CW", "FGSM", "MIFGSM", "PGD", "PGDL2", "APGDConfig", "AutoAttack",
           "AutoAttackConfig", "CWConfig", "FGSMConfig", "InputOnly", "MIFGSMConfig", "Norm", "PGDConfig",
           "PGDL2Config", "QueryAttack", "Square", "SquareConfig", "modes_kept", "training_attack"]

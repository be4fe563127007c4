"""The adapters this hub runs, by source system name. Adding an adapter = one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.bms import ADAPTER as BMS
from adapters.devlog import ADAPTER as DEVLOG
from adapters.fhir import ADAPTER as FHIR
from adapters.his import ADAPTER as HIS
from adapters.hrp import ADAPTER as HRP
from adapters.oa import ADAPTER as OA
from adapters.spd import ADAPTER as SPD

if TYPE_CHECKING:
    from adapters.base import AdapterSpec

ADAPTERS: dict[str, AdapterSpec] = {
    HRP.system.value: HRP,
    OA.system.value: OA,
    SPD.system.value: SPD,
    FHIR.system.value: FHIR,
    BMS.system.value: BMS,
    DEVLOG.system.value: DEVLOG,
    HIS.system.value: HIS,
}

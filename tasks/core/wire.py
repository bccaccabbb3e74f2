"""The data API's record on the wire: its columns, in order, and what each carries.

The one home of the wire contract: the simulator (``data_api/``) sends exactly this, and
:mod:`tasks.core.schema` reads it into the canonical types. Standard library only, so the
simulator's image carries it without the pipeline's libraries.
"""

from __future__ import annotations

from typing import Literal

#: Column order of the data API's records and of every stored table.
COLUMNS: tuple[str, ...] = (
    "brokered_by",
    "status",
    "price",
    "bed",
    "bath",
    "acre_lot",
    "street",
    "city",
    "state",
    "zip_code",
    "house_size",
    "prev_sold_date",
)

#: What the data API sends for each column: a float (NaN or null when unknown) or a string.
WIRE_KINDS: dict[str, Literal["float", "string"]] = {
    "brokered_by": "float",
    "status": "string",
    "price": "float",
    "bed": "float",
    "bath": "float",
    "acre_lot": "float",
    "street": "float",
    "city": "string",
    "state": "string",
    "zip_code": "float",
    "house_size": "float",
    "prev_sold_date": "string",
}

#: The listing statuses of the Realtor data.
STATUSES: tuple[str, ...] = ("for_sale", "sold", "ready_to_build")

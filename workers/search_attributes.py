"""Register Sluicegate's custom search attributes on a Temporal server (idempotent)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from sluicegate.visibility import SEARCH_ATTRIBUTES


async def ensure_search_attributes(client: Client) -> None:
    """Add each of `SEARCH_ATTRIBUTES` to the client's namespace; existing ones are kept.

    One request per attribute, because the time-skipping test server implements
    neither listing nor a partial add.
    """
    for key in SEARCH_ATTRIBUTES:
        request = AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type.value)},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise

"""Custom search attributes a deployment workflow keeps up to date, for `list_workflows`.

Pure (only `temporalio.common`), so workflow code may import it. The same keys register
the attributes on the dev server (`search_attribute_flags`) and on any other server
(`workers.search_attributes.ensure_search_attributes`).
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

DEPLOY_SERVICE = SearchAttributeKey.for_keyword("DeployService")
DEPLOY_PHASE = SearchAttributeKey.for_keyword("DeployPhase")
DEPLOY_CANARY_WEIGHT = SearchAttributeKey.for_int("DeployCanaryWeight")
DEPLOY_OUTCOME = SearchAttributeKey.for_keyword("DeployOutcome")
DEPLOY_CANARY_VERSION = SearchAttributeKey.for_keyword("DeployCanaryVersion")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    DEPLOY_SERVICE,
    DEPLOY_PHASE,
    DEPLOY_CANARY_WEIGHT,
    DEPLOY_OUTCOME,
    DEPLOY_CANARY_VERSION,
)

# Type names the `temporal` CLI accepts in `--search-attribute Name=Type`.
CLI_TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def search_attribute_flags() -> list[str]:
    """`Name=Type` values for `temporal server start-dev --search-attribute`, one per key."""
    return [f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type]}" for key in SEARCH_ATTRIBUTES]
